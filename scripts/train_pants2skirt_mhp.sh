#!/usr/bin/env bash
# Paper setting, LV-MHP pants->skirt (build the data first: python -m datasets.generate_mhp_dataset). Extra flags pass through.
set -e
cd "$(dirname "$0")/.."
python train.py --dataroot ./datasets/pants2skirt_mhp --model insta_gan --name pants2skirt_mhp_instagan --loadSizeH 270 --loadSizeW 180 --fineSizeH 240 --fineSizeW 160 --niter 100 --niter_decay 100 "$@"

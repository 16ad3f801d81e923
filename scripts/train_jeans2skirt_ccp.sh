#!/usr/bin/env bash
# Paper setting, CCP jeans->skirt (build the data first: python -m datasets.generate_ccp_dataset). Extra flags pass through.
set -e
cd "$(dirname "$0")/.."
python train.py --dataroot ./datasets/jeans2skirt_ccp --model insta_gan --name jeans2skirt_ccp_instagan --loadSizeH 330 --loadSizeW 220 --fineSizeH 300 --fineSizeW 200 --niter 400 --niter_decay 200 "$@"

#!/usr/bin/env bash
# Paper setting, COCO sheep->giraffe (build the data first: python -m datasets.generate_coco_dataset). Extra flags pass through.
set -e
cd "$(dirname "$0")/.."
python train.py --dataroot ./datasets/shp2gir_coco --model insta_gan --name shp2gir_coco_instagan --loadSizeH 220 --loadSizeW 220 --fineSizeH 200 --fineSizeW 200 --niter 100 --niter_decay 100 "$@"

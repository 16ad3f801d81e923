#!/usr/bin/env bash
# Translate the COCO sheep<->giraffe test split with up to 20 instances per image.
set -e
cd "$(dirname "$0")/.."
python test.py --dataroot ./datasets/shp2gir_coco --model insta_gan --name shp2gir_coco_instagan --loadSizeH 200 --loadSizeW 200 --fineSizeH 200 --fineSizeW 200 --ins_per 2 --ins_max 20 "$@"

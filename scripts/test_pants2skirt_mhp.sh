#!/usr/bin/env bash
# Translate the MHP pants<->skirt test split with up to 20 instances per image.
set -e
cd "$(dirname "$0")/.."
python test.py --dataroot ./datasets/pants2skirt_mhp --model insta_gan --name pants2skirt_mhp_instagan --loadSizeH 240 --loadSizeW 160 --fineSizeH 240 --fineSizeW 160 --ins_per 2 --ins_max 20 "$@"

#!/usr/bin/env bash
# Translate the CCP jeans<->skirt test split.
set -e
cd "$(dirname "$0")/.."
python test.py --dataroot ./datasets/jeans2skirt_ccp --model insta_gan --name jeans2skirt_ccp_instagan --loadSizeH 300 --loadSizeW 200 --fineSizeH 300 --fineSizeW 200 --ins_per 2 --ins_max 20 "$@"

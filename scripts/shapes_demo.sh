#!/usr/bin/env bash
# The main job on the built-in shapes data, from a fresh clone:
#   virtual environment + requirements -> shapes dataset -> short InstaGAN training -> test -> HTML page.
# About 5 minutes on a 2-core CPU (a longer, larger run when a GPU is present).
# Environment overrides: NAME, MINUTES (CPU training budget, default 4), DISPLAY_ID (1 = send to a running visdom
# server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
PY=.venv/bin/python
NAME=${NAME:-shapes_instagan}
if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    SIZE=128; NET="--ngf 64 --ndf 64 --n_blocks_G 6"; RUN="--batch_size 8 --max_dataset_size 2000 --niter 4 --niter_decay 4"
else
    # a time budget, not a step count: about 5 minutes in all on any 2-core machine (500 steps where it is fast)
    SIZE=64;  NET="--ngf 16 --ndf 16 --n_blocks_G 2"; RUN="--batch_size 4 --max_dataset_size 1000 --niter 1 --niter_decay 1 --amp bf16 --max_minutes ${MINUTES:-4}"
fi
DATA=./datasets/shapes_$SIZE
"$PY" -m datasets.make_shapes_dataset --out "$DATA" --size "$SIZE"
COMMON="--dataroot $DATA --name $NAME --model insta_gan --load_size $SIZE --crop_size $SIZE $NET"
"$PY" train.py $COMMON $RUN --overwrite --num_threads 2 --seed 0 --display_id "${DISPLAY_ID:-0}" --print_freq 200 --save_epoch_freq 1
"$PY" test.py $COMMON --ins_max 20 --ins_per 2 --num_test 50 --save_reconstructions
echo
echo "Training log and curves: checkpoints/$NAME/loss_log.txt, checkpoints/$NAME/loss_plot.png"
echo "Results page (open in a browser): $(pwd)/results/$NAME/test_latest/index.html"

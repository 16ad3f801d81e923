#!/usr/bin/env bash
# The main job on the built-in shapes data, from a fresh clone:
#   virtual environment + requirements -> shapes dataset -> short InstaGAN training -> test -> HTML page.
# About 5 minutes on a 2-core CPU (a longer, larger run when a GPU is present). It trains with the recipe that did
# best on the shapes benchmark (docs/shapes_benchmark.md): batch norm instead of the paper's instance norm, a heavier
# context and identity loss (--lambda_ctx 3 --lambda_idt 10), and the output composed through the masks
# (--compose_output); RECIPE=paper trains the paper's settings instead.
# Environment overrides: NAME, MINUTES (CPU training budget, default 4), DISPLAY_ID (1 = send to a running visdom
# server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
PY=.venv/bin/python
NAME=${NAME:-shapes_instagan}
case "${RECIPE:-best}" in
    best)  RECIPE_FLAGS="--norm batch --lambda_ctx 3 --lambda_idt 10 --compose_output" ;;
    paper) RECIPE_FLAGS="--norm instance" ;;
    *) echo "RECIPE must be best or paper, not ${RECIPE}" >&2; exit 2 ;;
esac
if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    SIZE=128; NET="--ngf 64 --ndf 64 --n_blocks_G 6"; RUN="--batch_size 8 --max_dataset_size 2000 --niter 4 --niter_decay 4"
else
    # a time budget, not a step count: about 5 minutes in all on any 2-core machine (500 steps where it is fast)
    SIZE=64;  NET="--ngf 16 --ndf 16 --n_blocks_G 2"; RUN="--batch_size 4 --max_dataset_size 1000 --niter 1 --niter_decay 1 --amp bf16 --max_minutes ${MINUTES:-4}"
fi
DATA=./datasets/shapes_$SIZE
"$PY" -m datasets.make_shapes_dataset --out "$DATA" --size "$SIZE"
COMMON="--dataroot $DATA --name $NAME --model insta_gan --load_size $SIZE --crop_size $SIZE $NET"
"$PY" train.py $COMMON $RECIPE_FLAGS $RUN --overwrite --num_threads 2 --seed 0 --display_id "${DISPLAY_ID:-0}" --print_freq 200 --save_epoch_freq 1
# --eval: batch norm uses the statistics gathered in training; the recipe flags come from the run's train_opt.json
"$PY" test.py $COMMON --eval --ins_max 20 --ins_per 2 --num_test 50 --save_reconstructions
echo
echo "Scores of the A -> B translations against the ground truth (python evaluate.py --help for more):"
"$PY" evaluate.py --results "results/$NAME/test_latest" --no_fid --no_domain_score --no_shape_score \
    --json "results/$NAME/test_latest/metrics_AtoB.json" | grep -E "target|object|background PSNR dB vs|floor|reference" | grep -v skipped
echo
echo "Training log and curves: checkpoints/$NAME/loss_log.txt, checkpoints/$NAME/loss_plot.png"
echo "Results page (open in a browser): $(pwd)/results/$NAME/test_latest/index.html"

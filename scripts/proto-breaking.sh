#!/usr/bin/env bash
# `buf breaking` for every commit that changed proto/, each against its parent, plus the
# working tree against HEAD. A released field can then never break unnoticed, however many
# commits one submission brings. Commits are walked newest first, back to LIMIT of them.
set -euo pipefail
cd "$(dirname "$0")/.."
buf="${BUF:-.venv/bin/buf}"
limit="${PROTO_BREAKING_LIMIT:-200}"

if git rev-parse -q --verify HEAD >/dev/null && git cat-file -e HEAD:proto 2>/dev/null; then
    "$buf" breaking --against '.git#ref=HEAD'
fi
checked=0
# buf clones refs 50 commits deep by default; reach back to the first commit.
depth=$(( $(git rev-list --count HEAD) + 1 ))
for commit in $(git rev-list --max-count="$limit" HEAD -- proto); do
    if git cat-file -e "$commit~1:proto" 2>/dev/null; then
        "$buf" breaking "$(pwd)/.git#ref=$commit,depth=$depth" \
            --against "$(pwd)/.git#ref=$commit~1,depth=$depth"
        checked=$((checked + 1))
    fi
done
echo "buf breaking: working tree and $checked proto-changing commit(s) checked"

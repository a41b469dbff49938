#!/usr/bin/env bash
# Run the whole test suite (tests/). Exit code: 0 when every test passed.
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k fingerprint -x   # extra arguments go to pytest (both processes)
#
# Two pytest processes run side by side: one runs the tests marked `book` (the cold book
# build, which they share, and the checks of the built site), the other the rest, so that
# the rest's model runs, installs and browser waits overlap the build. Each model process
# fits its torch threads to the cores free to it (tinker_offline/threads.py). The book
# process prints as it goes; the other's output follows when both are done.
# TEST_SERIAL=1 runs everything in one process instead.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh --browser || exit $?
PYTEST=(./.venv/bin/python -m pytest -q)
if [[ "${TEST_SERIAL:-0}" == 1 ]]; then
    exec "${PYTEST[@]}" "$@"
fi

start=$SECONDS
others_log="$(mktemp)"
trap 'rm -f "$others_log"' EXIT
"${PYTEST[@]}" -m "not book" "$@" >"$others_log" 2>&1 &
others=$!
echo "[test] the tests marked book (the book build and the site's checks), here; the rest beside them (pid $others)"
"${PYTEST[@]}" -m book "$@"
book_status=$?
wait "$others"
others_status=$?
echo
echo "[test] ---------- the other tests (-m 'not book') ----------"
cat "$others_log"
# 5: no test selected (an extra -k or -m that matches only one side)
ok() { [[ "$1" == 0 || "$1" == 5 ]]; }
echo "[test] book tests: exit $book_status; other tests: exit $others_status; $((SECONDS - start)) s in all"
if ok "$book_status" && ok "$others_status" && ! [[ "$book_status" == 5 && "$others_status" == 5 ]]; then
    exit 0
fi
if ! ok "$book_status"; then exit "$book_status"; fi
if ! ok "$others_status"; then exit "$others_status"; fi
exit 5

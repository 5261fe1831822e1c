#!/usr/bin/env bash
# Runs the benchmarks whose figures docs/benchmarks.md gives, several times,
# interleaved with those of a baseline commit when one is given, so that
# each figure stands beside its baseline from the same window (the machine
# is shared, and absolute figures drift by half from hour to hour):
#
#   scripts/bench.sh                      # this tree, 3 runs
#   scripts/bench.sh --base 116a587       # this tree beside commit 116a587
#   scripts/bench.sh --runs 5 --out /tmp/bench
#   scripts/bench.sh --only 'sqlite|Dispatch'   # the benchmarks matching a regexp
#
# It prints benchstat's comparison, then a Markdown table of medians
# (docs/benchmarks.md's tables come from it) and
# the ratios the goals are stated in: each webhook beside its store's own ceiling, one-report bodies
# beside an empty handler on the same listener, dispatch beside the
# sandbox's own ceiling (each measured inside its benchmark's run). The
# baseline is built from a `git worktree`; a benchmark it lacks is left
# blank. --report DIR prints the tables of an earlier run's --out DIR
# without running anything. PostgreSQL comes from
# IBMAIL_TEST_POSTGRES (default: the local test database); without one its
# rows are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

runs=3 base="" out="" only="" report=""
while [ $# -gt 0 ]; do
	case $1 in
	--base) base=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--report) report=$2; shift 2 ;;
	*) echo "usage: $0 [--base COMMIT] [--runs N] [--out DIR] [--only REGEXP] [--report DIR]" >&2; exit 2 ;;
	esac
done
summarize() { # prints the tables of the results in $out
	if [ -n "$base" ]; then
		go tool -modfile=tools/go.mod benchstat base="$out/base.txt" new="$out/new.txt" || true
	else
		go tool -modfile=tools/go.mod benchstat "$out/new.txt" || true
	fi
	echo
	# Medians per benchmark and metric, then the ratios, as Markdown.
	awk -v runs="$runs" -v hasbase="${base:+1}" '
	function median(list,    n, a, i, j, t) {
		n = split(list, a, " ")
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	function fmt(v,    s) {
		if (v == "") return ""
		if (v < 100) return sprintf("%.3g", v)
		s = sprintf("%.0f", v)
		while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
		return s
	}
	FNR == 1 { side = FILENAME ~ /base\.txt$/ ? "base" : "new" }
	/^pkg:/ { pkg = $2; sub(/.*\/ibmail\//, "", pkg) }
	/^Benchmark/ {
		name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
		for (i = 3; i < NF; i += 2) {
			if ($(i+1) ~ /^(B\/op|allocs\/op)$/) continue
			if ($(i+1) != "ns/op") custom[pkg " " name] = 1
			key = pkg " " name " " $(i+1)
			if (!(key in seen)) { seen[key] = 1; order[++n] = key }
			vals[side, key] = vals[side, key] " " $i
		}
	}
	END {
		print "| package | benchmark | metric | " (hasbase ? "baseline | " : "") "this tree | " (hasbase ? "ratio |" : "")
		print "| --- | --- | --- | " (hasbase ? "--- | " : "") "--- | " (hasbase ? "--- |" : "")
		for (k = 1; k <= n; k++) {
			key = order[k]; split(key, p, " ")
			if (p[3] == "ns/op" && (p[1] " " p[2]) in custom) continue
			nv = vals["new", key] == "" ? "" : median(vals["new", key])
			bv = vals["base", key] == "" ? "" : median(vals["base", key])
			med[key] = nv
			line = "| " p[1] " | " p[2] " | " p[3] " | "
			if (hasbase) line = line fmt(bv) " | "
			line = line fmt(nv) " |"
			if (hasbase) line = line " " (bv != "" && nv != "" && bv + 0 != 0 ? sprintf("%.2f", nv / bv) : "") " |"
			print line
		}
		print ""
		print "| ratio (this tree, medians of " runs " runs) | value |"
		print "| --- | --- |"
		ratio("delivery-report webhook / SQLite ceiling", "server WebhookIngest/store=sqlite reports/s", "store/sqlite BatchInsertCeiling/events=100% reports/s")
		ratio("tracking webhook / SQLite ceiling", "server TrackingIngest/store=sqlite reports/s", "store/sqlite BatchInsertCeiling/events=100% reports/s")
		ratio("platform-events webhook / SQLite ceiling", "server PlatformEventsIngest/store=sqlite reports/s", "store/sqlite BatchInsertCeiling/events=100% reports/s")
		ratio("delivery-report webhook / PostgreSQL ceiling", "server WebhookIngest/store=postgres reports/s", "store/postgres BatchInsertCeiling/events=100% reports/s")
		ratio("tracking webhook / PostgreSQL ceiling", "server TrackingIngest/store=postgres reports/s", "store/postgres BatchInsertCeiling/events=100% reports/s")
		ratio("platform-events webhook / PostgreSQL ceiling", "server PlatformEventsIngest/store=postgres reports/s", "store/postgres BatchInsertCeiling/events=100% reports/s")
		ratio("1-report bodies / empty handler on the same listener (SQLite)", "server WebhookIngest1/store=sqlite bodies/s", "server WebhookIngest1/store=sqlite ceiling-bodies/s")
		ratio("1-report bodies / empty handler on the same listener (PostgreSQL)", "server WebhookIngest1/store=postgres bodies/s", "server WebhookIngest1/store=postgres ceiling-bodies/s")
		ratio("dispatch / the sandbox ceiling of the same run (SQLite)", "server Dispatch/store=sqlite recipients/s", "server Dispatch/store=sqlite ceiling-recipients/s")
		ratio("dispatch / the sandbox ceiling of the same run (PostgreSQL)", "server Dispatch/store=postgres recipients/s", "server Dispatch/store=postgres ceiling-recipients/s")
		ratio("dispatch: the most the CPU allows, the ceiling CPU a recipient / dispatch CPU a recipient (SQLite)", "server Dispatch/store=sqlite ceiling-cpu-µs/recipient", "server Dispatch/store=sqlite cpu-µs/recipient")
		ratio("dispatch: the most the CPU allows (PostgreSQL, the database server CPU not counted)", "server Dispatch/store=postgres ceiling-cpu-µs/recipient", "server Dispatch/store=postgres cpu-µs/recipient")
	}
	function ratio(label, num, den) {
		if (med[num] != "" && med[den] != "" && med[den] + 0 != 0) printf "| %s | %.2f |\n", label, med[num] / med[den]
	}
	' ${base:+"$out/base.txt"} "$out/new.txt"
}

if [ -n "$report" ]; then
	out=$report
	[ ! -f "$out/base.txt" ] || base=$(cat "$out/base.commit" 2>/dev/null || echo baseline)
	summarize
	exit
fi
work=$(mktemp -d)
cleanup() {
	[ -z "$base" ] || git -C "$root" worktree remove --force "$work/src" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
out=${out:-$work/results}
mkdir -p "$out"
export IBMAIL_TEST_POSTGRES=${IBMAIL_TEST_POSTGRES-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}

# The benchmarks: package, pattern, -benchtime (fixed counts, so that
# every run does the same work).
benches=(
	"store/sqlite|BatchInsertCeiling|20x"
	"store/postgres|BatchInsertCeiling|20x"
	"server|WebhookIngest$|TrackingIngest$|PlatformEventsIngest$|1000x"
	"server|WebhookIngest1$|5000x"
	"server|Dispatch$|5x"
	"classifier|Classify$|1000000x"
)

# The benchmark files the baseline runs from this tree (see below).
overlay=(server/ingest_bench_test.go server/ingest1_bench_test.go server/dispatch_bench_test.go)

build() { # src dir, binary dir
	mkdir -p "$2"
	for pkg in store/sqlite store/postgres server classifier; do
		(cd "$1" && go test -c -o "$2/${pkg//\//_}.test" "./$pkg")
	done
}
echo "building $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')..." >&2
build "$root" "$work/new"
sides=(new)
if [ -n "$base" ]; then
	echo "building the baseline $base..." >&2
	git worktree add --quiet --detach "$work/src" "$base"
	# Both sides run this tree's server benchmarks where they compile
	# against the baseline, so that a figure differs by the code measured,
	# not by the benchmark's own changes (its clients, its counts).
	for f in "${overlay[@]}"; do cp "$root/$f" "$work/src/$f"; done
	if ! build "$work/src" "$work/base" 2>"$work/overlay.err"; then
		echo "this tree's benchmarks do not build against $base; it runs its own:" >&2
		cat "$work/overlay.err" >&2
		git -C "$work/src" checkout --quiet -- . && git -C "$work/src" clean -fdq
		build "$work/src" "$work/base"
	fi
	sides=(base new)
fi

run() { # side, src dir, package, pattern, benchtime
	local bin="$work/$1/${3//\//_}.test"
	# Run in the package's directory, as go test does, for its testdata.
	(cd "$2/$3" && "$bin" -test.run '^$' -test.bench "$4" -test.benchtime "$5" -test.benchmem=false) |
		grep -E '^(Benchmark|goos|goarch|pkg|cpu)' >>"$out/$1.txt" || true
}
: >"$out/new.txt"
[ -z "$base" ] || : >"$out/base.txt"
for i in $(seq "$runs"); do
	for b in "${benches[@]}"; do
		[ -z "$only" ] || [[ $b =~ $only ]] || continue
		pkg=${b%%|*} rest=${b#*|}
		pattern=${rest%|*} benchtime=${rest##*|}
		for side in "${sides[@]}"; do
			src=$root
			[ "$side" = new ] || src=$work/src
			echo "run $i/$runs: $side $pkg $pattern" >&2
			run "$side" "$src" "$pkg" "$pattern" "$benchtime"
		done
	done
done

summarize
echo "$base" >"$out/base.commit"
echo >&2 "raw results: $out (print them again with --report $out)"

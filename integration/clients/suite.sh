#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Run one suite: set up its caller (a daemon, a config), run each selected
# scenario in a fresh bash under a timeout, check that the caller left nothing
# of the scenario's containers behind, tear the caller down whatever happened.
#   suite.sh SUITE [GLOB...]     (run.sh exports the environment, see lib.sh)
# Prints one line per scenario and appends it to $CLIENTS_WORK/results.
set -euo pipefail
suite=$1
shift
globs=("$@")
((${#globs[@]})) || globs=('*')
# shellcheck source=lib.sh
source "$CLIENTS_HERE/lib.sh"
# shellcheck source=/dev/null
source "$CLIENTS_HERE/$suite.sh"

SCENARIO_TIMEOUT=${SCENARIO_TIMEOUT:-60}
logs=$CLIENTS_LOGS/$suite
mkdir -p "$logs"

report() { # STATUS NAME [DETAIL]
  local line="$1 $suite/$2${3:+$3}"
  echo "$line"
  echo "$line" >>"$CLIENTS_WORK/results"
}

# bounded SECONDS FUNCTION [ARGS]: a suite function in its own shell, killed
# (with everything it started in the foreground) after SECONDS.
bounded() {
  local secs=$1
  shift
  timeout -k 5 "$secs" bash "$CLIENTS_HERE/scenario.sh" "$suite" "$@" </dev/null
}

# The xfail line for a scenario on hull: "GLOB REASON ~ TEXT" (see the
# file); nothing for any other runtime.
xfail_line() {
  local name=$1 pat rest
  [[ "$RT_NAME" == hull ]] || return 0
  while read -r pat rest; do
    [[ -z "$pat" || "$pat" == \#* ]] && continue
    # shellcheck disable=SC2053 # the pattern is a glob on purpose
    if [[ "$suite/$name" == $pat ]]; then
      echo "$rest"
      return 0
    fi
  done <"$CLIENTS_HERE/xfail"
}

# log_shows LOG "TEXT | TEXT...": the log has one of the texts.
log_shows() {
  local text
  while read -r text; do
    [[ -n "$text" ]] && grep -qF -- "$text" "$1" && return 0
  done <<<"${2// | /$'\n'}"
  return 1
}

# leaks_after MOUNTS-BEFORE ID...: what the scenario's containers left
# behind, and mounts under the run's dirs that were not there before it.
# Callers finish some cleanup asynchronously: give them 5 s to settle.
leaks_after() {
  local before=$1 i out id
  shift
  for ((i = 0; i < 50; i++)); do
    out=$(
      for id in "$@"; do leaks_of "$id"; done
      comm -13 <(echo "$before") <(mount_snapshot) | sed 's/^/mount /'
    )
    [[ -z "$out" ]] && return 0
    sleep 0.1
  done
  echo "$out"
}

run_scenario() {
  local name=$1 log=$logs/$1${2:+.$2}.log rc=0 why="" leaks ids before mark reason expected n start took said
  export SCEN_DIR=$CLIENTS_WORK/$suite/scenarios/$name${2:+.$2}
  mkdir -p "$SCEN_DIR"
  before=$(mount_snapshot)
  start=$SECONDS
  bounded "$SCENARIO_TIMEOUT" "t_$name" >"$log" 2>&1 || rc=$?
  if ((rc == 124 || rc == 137)); then
    why="timed out after ${SCENARIO_TIMEOUT}s"
  elif ((rc)); then
    # An assertion's message, else the failed command the ERR trap named.
    why=$(sed -n 's/^FAILED: //p' "$log" | tail -n1)
    if [[ -z "$why" ]] && grep -q '^ERROR: ' "$log"; then
      # The command the ERR trap named, and the last thing it said.
      why=$(sed -n 's/^ERROR: //p' "$log" | tail -n1)
      said=$(sed '/^ERROR: /,$d' "$log" | grep -v '^+\|^ *$' | tail -n1) || true
      [[ -z "$said" ]] || why+=": ${said:0:300}"
    fi
    [[ -n "$why" ]] || why="exit status $rc"
  fi
  mapfile -t ids < <(sort -u "$SCEN_DIR/ids" 2>/dev/null)
  if ((rc)); then
    # A frozen container would block the caller's own removal: thaw first.
    for id in "${ids[@]}"; do
      thaw "$id"
      bounded 60 suite_force_remove "$id" >>"$log" 2>&1 || true
    done
  fi
  if ((rc == 0)); then
    for id in "${ids[@]}"; do
      created_by_runtime "$id" && continue
      why="$id was not created by $RT_CMD: the caller ran another runtime"
      echo "FAILED: $why" >>"$log"
      break
    done
  fi
  leaks=$(leaks_after "$before" "${ids[@]}")
  if [[ -n "$leaks" ]]; then
    printf '\n--- left behind after the caller removed the container:\n%s\n' "$leaks" >>"$log"
    if ((rc == 0)); then
      why="left behind: $(head -n1 <<<"$leaks")"
      n=$(wc -l <<<"$leaks")
      if ((n > 1)); then why+=" (+$((n - 1)) more)"; fi
    fi
    for id in "${ids[@]}"; do scrub "$id"; done
    sed -n 's/^mount //p' <<<"$leaks" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  took=$((SECONDS - start))
  echo "--- ${took}s" >>"$log"
  mark=$(xfail_line "$name")
  reason=${mark%% ~ *} expected=${mark#* ~ }
  if [[ -n "$mark" && -z "$why" ]]; then
    report XPASS "$name" ": passes now; remove its mark from integration/clients/xfail ($reason)"
  elif [[ -n "$mark" ]] && log_shows "$log" "$expected"; then
    report XFAIL "$name" " ($reason)"
  elif [[ -n "$mark" ]]; then
    report FAIL "$name" ": $why (marked xfail for '$expected', which its log does not show)"
    tail -n 25 "$log" | cut -c1-300 | sed 's/^/    | /'
  elif [[ -z "$why" ]]; then
    report ok "$name" "$( ((took < 5)) || echo " (${took}s)")"
  else
    report FAIL "$name" ": $why"
    echo "    --- last lines of $log:"
    tail -n 25 "$log" | cut -c1-300 | sed 's/^/    | /'
  fi
}

# Scenarios run in the order the suite file defines them.
scenarios=()
mapfile -t defined < <(sed -n 's/^t_\([a-z0-9_]*\)() {.*/\1/p' "$CLIENTS_HERE/$suite.sh")
for fn in "${defined[@]}"; do
  # systemd_* scenarios check the systemd cgroup driver: only with it.
  [[ "$fn" != systemd_* || "$CLIENTS_CGROUP" == systemd ]] || continue
  for g in "${globs[@]}"; do
    # shellcheck disable=SC2053
    if [[ "$fn" == $g ]]; then
      scenarios+=("$fn")
      break
    fi
  done
done
((${#scenarios[@]})) || exit 0

# The caller's own logs (daemon output, podman's events) are kept with the
# scenarios' logs.
# A teardown that hangs (on a container the runtime cannot kill, say) is cut
# short: then the daemons are killed and every container the suite tracked
# is scrubbed.
teardown() {
  local f id
  if ! bounded 120 suite_teardown >>"$logs/teardown.log" 2>&1; then
    echo "teardown failed or timed out: killing the daemons, scrubbing" >>"$logs/teardown.log"
    for f in "$CLIENTS_WORK/$suite"/*.pid; do
      [[ -e "$f" ]] && kill -9 "$(cat "$f")" 2>/dev/null
    done
    cat "$CLIENTS_WORK/$suite"/scenarios/*/ids 2>/dev/null | while read -r id; do scrub "$id"; done
  fi
  cp "$CLIENTS_WORK/$suite"/*.log "$logs/" 2>/dev/null || true
}
trap teardown EXIT
trap 'exit 130' INT TERM
if ! suite_setup >"$logs/setup.log" 2>&1; then
  report FAIL setup ": $(tail -n1 "$logs/setup.log")"
  tail -n 25 "$logs/setup.log" | sed 's/^/    | /'
  exit 0
fi
# REPEAT=N runs each selected scenario N times, to hunt for flakes.
for name in "${scenarios[@]}"; do
  if ((${REPEAT:-1} > 1)); then
    for ((round = 1; round <= REPEAT; round++)); do run_scenario "$name" "$round"; done
  else
    run_scenario "$name"
  fi
done

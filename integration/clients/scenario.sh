#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Run one function of a suite (a scenario t_NAME, or suite_force_remove ID,
# suite_teardown) in a fresh shell, traced, so that suite.sh can bound it.
#   scenario.sh SUITE FUNCTION [ARGS...]      (suite.sh sets the environment)
set -euo pipefail
# shellcheck source=lib.sh
source "$CLIENTS_HERE/lib.sh"
# shellcheck source=/dev/null
source "$CLIENTS_HERE/$1.sh"
cd "${SCEN_DIR:-$CLIENTS_WORK}"
# A command that fails outside an assertion names itself as the reason.
set -E
trap 'echo "ERROR: \`$BASH_COMMAND\` exited $?" >&2' ERR
PS4='+ ${FUNCNAME[0]:-}:${LINENO}: '
set -x
shift
"$@"

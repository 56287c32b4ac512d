#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Run one scenario function in a fresh shell, traced into its log.
#   scenario.sh SUITE NAME      (suite.sh sets the environment)
set -euo pipefail
# shellcheck source=lib.sh
source "$CLIENTS_HERE/lib.sh"
# shellcheck source=/dev/null
source "$CLIENTS_HERE/$1.sh"
cd "$SCEN_DIR"
# A command that fails outside an assertion names itself as the reason.
set -E
trap 'echo "ERROR: \`$BASH_COMMAND\` exited $?" >&2' ERR
PS4='+ ${FUNCNAME[0]:-}:${LINENO}: '
set -x
"t_$2"

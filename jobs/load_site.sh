# Sourced (not run) by gorp_launch.sh, post.sbatch and submit.sh before they run gorp or Python:
# sources the site file, where a cluster's `module load` lines go, into the calling shell so that
# srun and mpirun pass what it sets on to every rank. Not for settings of gorp itself (those are
# config keys) nor for #SBATCH options (those go on the sbatch command line). docs/SLURM.md.
#
# The site file is $GORP_SITE_FILE when set (it must exist), else $GORP_HOME/jobs/site.sh when
# that exists (git ignores it; jobs/site.example.sh is a template), else nothing is sourced.
# Module scripts read unset variables and return non-zero from inner commands, so the file runs
# without the caller's -e and -u; a non-zero status of the file as a whole stops the caller.
# Needs GORP_HOME set; the caller's name for messages in $gorp_caller.
gorp_site=${GORP_SITE_FILE:-$GORP_HOME/jobs/site.sh}
if [ -n "${GORP_SITE_FILE:-}" ] || [ -f "$gorp_site" ]; then
  if [ ! -f "$gorp_site" ] || [ ! -r "$gorp_site" ]; then
    echo "$gorp_caller: GORP_SITE_FILE=$gorp_site is not a readable file" >&2
    exit 2
  fi
  gorp_flags=$-
  set +eu
  # shellcheck disable=SC1090
  . "$gorp_site"
  gorp_site_rc=$?
  case $gorp_flags in *e*) set -e ;; esac
  case $gorp_flags in *u*) set -u ;; esac
  if [ "$gorp_site_rc" -ne 0 ]; then
    echo "$gorp_caller: the site file $gorp_site failed (status $gorp_site_rc)" >&2
    exit 2
  fi
  echo "$gorp_caller: sourced the site file $gorp_site" >&2
fi

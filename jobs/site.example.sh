# Template of a site file: copy it to jobs/site.sh (git ignores that name) or point
# GORP_SITE_FILE at your copy, and keep the lines your cluster needs. Every job script sources it
# (jobs/load_site.sh) before it runs gorp or Python: gorp_launch.sh in each array task, before
# `gorp config` and srun/mpirun, which pass its environment on to every rank; post.sbatch before
# the tables; submit.sh before it checks the configs on the login node. It runs in bash with
# -e and -u off; it must end with status 0. docs/SLURM.md.

# the toolchain gorp was built with (the names are your site's: `module avail`)
module purge
module load gcc/12.2.0 openmpi/4.1.4 hdf5/1.10.8-mpi openblas/0.3.21 scalapack/2.2.0

# the Python of the post job, when it is not $GORP_HOME/build/venv/bin/python
# export GORP_PYTHON=$HOME/venvs/gorp/bin/python

# a PMIx plugin of another name (`srun --mpi=list`), or mpirun where srun's PMIx does not match
# the MPI library
# export GORP_SRUN_MPI=pmix_v4
# export GORP_LAUNCHER=mpirun

# OpenMP threads pinned one per core inside each rank's cores: only where srun binds ranks to
# cores of their own (TaskPlugin=task/affinity; `scontrol show config | grep TaskPlugin`), else
# every rank would pin its threads to the same first cores of the node
# export OMP_PLACES=cores OMP_PROC_BIND=close

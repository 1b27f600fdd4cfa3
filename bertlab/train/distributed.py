"""Multi-host start-up: `jax.distributed.initialize` from flags or the environment.

On a TPU pod (or under Slurm / Open MPI) `auto=True` (`--multihost`) lets
`jax.distributed.initialize()` find its peers itself; elsewhere pass the coordinator address,
the number of processes and this process's id. On CPU the processes exchange collectives with
gloo (several processes on one machine simulate a multi-host run).
"""

import jax


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, auto: bool = False):
  if coordinator_address is None and num_processes is None:
    if auto:
      jax.distributed.initialize()  # TPU pod: peers from the TPU metadata
    return
  jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU backend only
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)

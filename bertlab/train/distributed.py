"""Multi-host start-up: `jax.distributed.initialize` from flags or the environment.

On a TPU pod `initialize()` finds its peers by itself; elsewhere pass the coordinator address,
the number of processes and this process's id. On CPU the processes exchange collectives with
gloo (several processes on one machine simulate a multi-host run).
"""

import jax


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, local_device_count: int | None = None):
  if coordinator_address is None and num_processes is None:
    return  # single process (or a TPU pod launch that calls with no arguments below)
  jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU backend only
  if local_device_count:
    jax.config.update("jax_num_cpu_devices", local_device_count)
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)

import os
import sys

# Tests import configs/ the way ml_collections does: by path, from the repository root.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_config(spec: str):
  """"bert.py:base" -> that config file's get_config("base")."""
  import importlib.util
  file, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location(
      f"config_{file[:-3]}", os.path.join(ROOT, "configs", file))
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


sys.modules.setdefault("bertlab_test_helpers", sys.modules[__name__])


def pytest_configure(config):
  """The embedded corpus and default vocabularies go to a cache shared by the test session."""
  import tempfile
  os.environ.setdefault("BERTLAB_CACHE", os.path.join(tempfile.gettempdir(), "bertlab-test-cache"))
  # Many tests (and their subprocesses, which inherit the environment) compile the same tiny
  # steps afresh; JAX's persistent cache serves the repeats (tests/test_fail_safe.py: 190 s
  # without, 148 s with an empty cache). Its key holds the HLO, flags and devices, so a hit is
  # the executable a fresh compile would give. Capped so a developer's cache stays small.
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                        os.path.join(os.environ["BERTLAB_CACHE"], "jax-compilation"))
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
  os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 * 1024 ** 3))

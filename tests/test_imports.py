"""The module graph: no import cycle among bertlab's modules, counting the imports inside
functions (they hide cycles as well as costs), and every such import says why it is there; and
`import bertlab` and a config file stay free of TensorFlow, so a command's console.setup comes
before TensorFlow's start-up notices (bertlab/console.py)."""

import ast
import os
import subprocess
import sys

from bertlab_test_helpers import ROOT

PACKAGE = os.path.join(ROOT, "bertlab")


def _modules() -> dict[str, str]:
  found = {}
  for folder, _, names in os.walk(PACKAGE):
    for name in names:
      if name.endswith(".py"):
        path = os.path.join(folder, name)
        module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        found[module.removesuffix(".__init__")] = path
  return found


def _imported(node, module: str, is_package: bool, modules) -> list[str]:
  """The bertlab modules an import statement loads (`from pkg import sub` loads pkg.sub)."""
  if isinstance(node, ast.Import):
    names = [alias.name for alias in node.names]
  else:
    base = node.module or ""
    if node.level:
      parts = module.split(".")[:len(module.split(".")) - node.level + is_package]
      base = ".".join(parts + [base] if base else parts)
    names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
  found = []
  for name in names:
    while name and name not in modules:
      name = name.rpartition(".")[0]
    if name.startswith("bertlab") and name != module:
      found.append(name)
  return found


def _graph():
  """(edges module -> imported modules, [(module, line) of unexplained function imports])."""
  modules, edges, unexplained = _modules(), {}, []
  for module, path in modules.items():
    source = open(path, encoding="utf-8").read()
    lines, tree = source.splitlines(), ast.parse(source)
    is_package = path.endswith("__init__.py")
    for node in tree.body:
      if isinstance(node, (ast.Import, ast.ImportFrom)):
        edges.setdefault(module, set()).update(_imported(node, module, is_package, modules))
    for function in ast.walk(tree):
      if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
        continue
      for node in ast.walk(function):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
          targets = _imported(node, module, is_package, modules)
          edges.setdefault(module, set()).update(targets)
          # The reason: a comment on the import or above it in the same function.
          said = any("#" in line for line in lines[function.lineno - 1:node.lineno])
          if targets and not said:
            unexplained.append(f"{module}:{node.lineno}")
  return edges, unexplained


def _cycles(edges) -> list[list[str]]:
  cycles, state, stack = [], {}, []

  def visit(module):
    state[module] = "open"
    stack.append(module)
    for other in sorted(edges.get(module, ())):
      if state.get(other) == "open":
        cycles.append(stack[stack.index(other):] + [other])
      elif other not in state:
        visit(other)
    stack.pop()
    state[module] = "done"

  for module in sorted(edges):
    if module not in state:
      visit(module)
  return cycles


def test_no_import_cycle():
  edges, _ = _graph()
  assert _cycles(edges) == []
  # The checker sees the cycles it is for: one planted by hand is found.
  assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_every_import_inside_a_function_says_why():
  _, unexplained = _graph()
  assert unexplained == [], ("bertlab imports inside functions without a comment saying why "
                             "(a cycle or a real import cost); move them to the top or say so")


def test_bertlab_and_its_config_files_load_without_tensorflow():
  code = ("import sys\nimport bertlab\nfrom bertlab import config_files\n"
          "for spec in ('configs/bert.py:tiny', 'configs/finetune/glue.py:sst2', "
          "'configs/finetune/ner.py'):\n  config_files.load(spec)\n"
          "print('tensorflow' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       check=True)
  assert out.stdout.strip() == "False", out.stderr[-2000:]

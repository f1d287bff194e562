"""A submission that patches the grader's own probes (review of issue 13, item 1): it reaches
the worker's ``probes`` module by name (``sys.modules``, ``__main__``, the objects the worker
hands it: ``get_ipython``, ``sys.stdout``) and makes every probe measure a correct engine it
carries instead of its own. The worker dispatches from a private copy made before the
submission's first line, so the patch earns nothing."""
import importlib.util
import sys

from autograder import examples, grade, probes

from conftest import ASSIGN_INSTEAD_OF_ADD, FAST, write_submission

# Appended to the buggy reference: the correct engine, kept aside, and every way to the probes
# the worker's process offers by name, each patched so that probes see the correct engine.
TAMPER = '''
import builtins as _builtins, sys as _sys
_correct = {{}}
exec({reference!r}, _correct)
_reached = []
for _candidate in (_sys.modules.get("probes"), getattr(_sys.modules.get("__main__"), "probes", None)):
    if _candidate is not None:
        _reached.append(vars(_candidate))
for _candidate in (getattr(_builtins, "get_ipython", None), type(_sys.stdout)):
    for _attribute in vars(_candidate).values() if isinstance(_candidate, type) else ():
        if hasattr(_attribute, "__globals__") and "PROBES" in _attribute.__globals__:
            _reached.append(_attribute.__globals__)

def _with_correct_engine(_probe):
    def _measured(ns, **params):
        return _probe(dict(ns, **{{name: _correct[name] for name in ("Value", "Neuron", "Layer", "MLP")}}), **params)
    return _measured

for _globals in _reached:
    for _name, _probe in list(_globals["PROBES"].items()):
        _globals["PROBES"][_name] = _with_correct_engine(_probe)
'''


def tampering_source():
    buggy = examples.patched(examples.one_module(), [ASSIGN_INSTEAD_OF_ADD])
    return buggy + TAMPER.format(reference=examples.one_module())


def test_the_tamper_works_on_a_probes_module_it_can_reach():
    """The attack is real: run in a process where ``probes`` is importable by name and
    dispatched from the module, it turns the buggy engine's a + a into a correct one."""
    spec = importlib.util.spec_from_file_location("probes", probes.__file__)
    exposed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exposed)
    saved = sys.modules.get("probes")
    sys.modules["probes"] = exposed
    try:
        ns = {}
        exec(tampering_source(), ns)
        a_plus_a = [["leaf", 3.0], ["add", 0, 0]]
        assert exposed.run(ns, "graph", {"program": a_plus_a})["grad"][0] == 2.0  # the buggy engine says 1.0
        assert probes.run(ns, "graph", {"program": a_plus_a})["grad"][0] == 1.0  # another module: untouched
    finally:
        if saved is None:
            sys.modules.pop("probes", None)
        else:
            sys.modules["probes"] = saved


def test_patching_the_probes_earns_no_points(tmp_path, level):
    subs = tmp_path / "subs"
    write_submission(subs, "honest", ASSIGN_INSTEAD_OF_ADD)
    (subs / "tamper.py").write_text(tampering_source())
    batch = grade.grade([subs], out=tmp_path / "OUT", jobs=2, seed=3, limits=FAST)
    scores = {row["id"]: row for row in batch.rows}
    assert scores["honest"]["status"] == scores["tamper"]["status"] == "graded"
    assert scores["honest"]["score"] < scores["honest"]["max_score"]  # the bug loses points
    assert scores["tamper"]["score"] <= scores["honest"]["score"]

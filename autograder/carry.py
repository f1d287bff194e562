"""Error carried forward: one mistake costs its own exercise's points, once.

Human markers call it *error carried forward* (ECF, follow-through marks): once a mistake is
penalised where it is made, later work that is right given that mistake keeps its marks. A
wrong local derivative of mul makes nearly every check fail (everything multiplies
somewhere), so without this a correct topological sort loses the backward points for a bug
in mul.

How it decides, after every check of a submission has been judged (``carry``):

1. **Establish the mistakes.** A misconception model (``misconceptions.MISCONCEPTIONS``)
   belongs to the exercises where that mistake is made (``Misconception.exercises``: the mul
   models to mul, the sweep's to backward, ...). A model is established when, in one style
   of implementation, it reproduces failed checks *of its own exercise* that are worth
   points (together with the mistakes established before it), and predicts nothing for the
   submission's passed gradient checks but what they observed. Greedily, the model that
   reproduces the most failures of the submission first (the fewest mistakes that explain
   it), then the most of its own exercise, common before rare, then the catalogue's order,
   until no model explains a further failure of its own exercise (at most ``MAX_MISTAKES``).
2. **Carry them.** Every other failed check whose observation (gradients, the Neuron's
   grads, the 50 losses of training) is what an implementation with established mistakes
   of *other* exercises observes, within the judges' tolerance, passes: it is right, given
   those mistakes. A check of a mistake's own exercise keeps its failure (that is where the
   mistake is penalised), and so does every check the models cannot predict or whose
   observation they do not reproduce: an unknown bug carries nothing. And nothing at all is
   carried unless the established mistakes reproduce every failed check that costs points
   (the outcome checks aside): a failure they cannot explain means a bug no model knows,
   which may be what made the other checks fail too.
3. ``training-converges`` is an outcome, not a computation: a network that does not train
   below the threshold does not, whatever the reason, so it is judged on the observation
   alone and never carried. A mistake that really stops training costs that check too.

Instructor-side only (it replays the models), used by the sandboxed grader and by the
in-process runs when asked; the handout's self-check does not carry errors.
"""
import math
from dataclasses import dataclass
from itertools import combinations

from . import judge, misconceptions

MAX_MISTAKES = 4  # more than this many distinct mistakes carry only the first four established
OUTCOME_JUDGES = {"converges"}  # judged on the outcome itself: never carried


@dataclass(frozen=True)
class Carried:
    """Why a failed check keeps its points: the established mistakes that reproduce it."""

    models: tuple  # names of misconceptions.MISCONCEPTIONS
    exercises: tuple  # where those mistakes were made and penalised
    words: str  # the models' sentences, joined

    def message(self):
        what = " and ".join(self.exercises)
        plural = "mistakes" if len(self.exercises) > 1 else "mistake"
        return (f"right, given the {what} {plural} above: points kept (error carried forward; "
                f"it looks as if {self.words})")

    def as_json(self):
        return {"models": list(self.models), "exercises": list(self.exercises),
                "diagnoses": sorted({d for name in self.models
                                     for d in misconceptions.MISCONCEPTIONS[name].diagnoses})}


# The diagnosis's styles of implementation, then the mixed ones (only sub, or only div,
# written directly): a mistake in mul plays out differently in a composed a / b.
STYLES = misconceptions.STYLES + misconceptions.MIXED_STYLES


def _styles():
    return range(len(STYLES))


def _matches(check, observed, bugs, style):
    """Whether ``observed`` is what ``check``'s probe reports on an implementation with
    ``bugs`` in style number ``style``, within the judges' tolerance."""
    if not isinstance(observed, dict) or check.get("judge") in OUTCOME_JUDGES:
        return False
    predicted = misconceptions.observe(check, bugs, STYLES[style])
    return predicted is not None and _agrees(predicted, observed)


# (check, observation's JSON text, mistakes, style) -> _matches: a course's submissions share
# observations (a passed check observes the reference's numbers, a common mistake the same
# wrong ones), so a batch compares each with the models once. In a batch of 100 mixed
# submissions 97% of the comparisons were repeats, in 24 notebooks with 24 different
# mistakes 46%. When full, the older half goes.
_AGREED = {}
_AGREED_MAX = 65_536


def _matcher(results, texts=None):
    """``match(i, bugs, style)``: ``_matches`` for result ``i``. ``texts``: each result's
    observation as ``json.dumps(observed, sort_keys=True)`` where it was parsed from JSON
    (the grader's replies: the text then says exactly what the value is), else None; only
    those are remembered across submissions."""
    def match(i, bugs, style):
        check, observed, _ = results[i]
        text = texts[i] if texts is not None else None
        if text is None:
            return _matches(check, observed, bugs, style)
        key = (misconceptions.check_key(check), check.get("judge"), text, frozenset(bugs), style)
        found = _AGREED.get(key)
        if found is None:
            found = _matches(check, observed, bugs, style)
            misconceptions.remember(_AGREED, key, found, _AGREED_MAX)
        return found

    return match


def _agrees(predicted, observed):
    """judge.reproduces, except that where the models' floats overflow (a loss that
    diverges to inf, then nan) the observation must overflow the same way."""
    if type(predicted) is float:
        return _float_agrees(predicted, observed)
    if isinstance(predicted, dict):
        return isinstance(observed, dict) and all(_agrees(v, observed.get(k)) for k, v in predicted.items())
    if isinstance(predicted, list):
        if not isinstance(observed, list) or len(observed) != len(predicted):
            return False
        # Most of carry's time is here, in lists of numbers: judge.reproduces inlined for them.
        isfinite, isclose, rel, abs_ = math.isfinite, math.isclose, judge.REL_TOL, judge.ABS_TOL
        for p, o in zip(predicted, observed):
            if type(p) is float and isfinite(p):
                if not ((type(o) is float and isfinite(o) or type(o) is int and judge.is_number(o))
                        and isclose(o, p, rel_tol=rel, abs_tol=abs_)):
                    return False
            elif not _agrees(p, o):
                return False
        return True
    return judge.reproduces(predicted, observed)


def _float_agrees(predicted, observed):
    if math.isfinite(predicted):
        return judge.reproduces(predicted, observed)
    return type(observed) is float and (observed == predicted or (math.isnan(observed) and math.isnan(predicted)))


def _consistent(name, style, passed, match):
    """The model alone predicts, in ``style``, what every passed gradient check observed."""
    if style >= len(misconceptions.STYLES):  # a mixed style: no signatures, replay the model
        return all(match(item.index, {name}, style) for item in passed)
    for item in passed:
        entry = item.signatures["models"].get(name)
        at = entry["row"][style] if entry else None
        if at is not None and not judge.reproduces(item.signatures["predictions"][at], item.observed):
            return False
    return True


def establish(results, match=None):
    """The mistakes a submission's own-exercise failures establish (step 1 above).

    ``results``: [(compiled check, observation or None, verdict)]; ``match``: see
    ``_matcher``. Returns ({model name: indices of the failed checks of its exercises it
    reproduces}, styles: the style numbers in which all of them do), in the order
    established; ({}, ()) for none."""
    match = match or _matcher(results)
    models = misconceptions.MISCONCEPTIONS
    owned = {exercise for model in models.values() for exercise in model.exercises}
    failed = [i for i, (check, observed, verdict) in enumerate(results)
              if not verdict.passed and isinstance(observed, dict) and check.get("exercise") in owned]
    if not failed:
        return {}, ()
    passed = [item for item in judge.evidence(results) if item.passed]
    order = {name: n for n, name in enumerate(models)}
    established, styles, explained = {}, set(_styles()), set()
    while len(established) < MAX_MISTAKES:
        best = None
        for name, model in models.items():
            if name in established or not model.exercises:
                continue
            own = [i for i in failed if i not in explained and results[i][0]["exercise"] in model.exercises
                   and results[i][0].get("points", 1) > 0]
            if not own:
                continue
            bugs = {*established, name}
            per_style = {}
            for style in sorted(styles):
                if _consistent(name, style, passed, match):
                    explains = [i for i in own if match(i, bugs, style)]
                    if explains:
                        per_style[style] = explains
            if not per_style:
                continue
            # Most failures explained in all (the fewest mistakes for the whole submission:
            # a missing edge in add also fails a - b, which is not a second mistake in sub),
            # then most of its own exercise's, then common before rare, the catalogue's order.
            reach = {style: [i for i in failed if i not in explained and i not in own
                             and match(i, bugs, style)] for style in per_style}
            style = min(per_style, key=lambda s: (-len(per_style[s]) - len(reach[s]), -len(per_style[s]), s))
            explains = per_style[style]
            key = (-len(explains) - len(reach[style]), -len(explains), model.rare, order[name])
            if best is None or key < best[0]:
                best = (key, name, explains, {s for s in per_style
                                              if (len(per_style[s]), len(reach[s])) == (len(explains), len(reach[style]))})
        if best is None:
            break
        _, name, explains, styles = best
        established[name] = explains
        # A failure the mistakes so far reproduce needs no further model (a backward-order
        # mistake also fails the add exercise's a + a + a + a: that failure is carried).
        explained |= {i for i in failed if any(match(i, set(established), s) for s in styles)}
    return established, tuple(sorted(styles)) if established else ()


def carry(results, texts=None):
    """Step 2 above: per result, a ``Carried`` when the check failed but keeps its points,
    else None. ``results`` as for ``establish``, ``texts`` as for ``_matcher``."""
    carried = [None] * len(results)
    match = _matcher(results, texts)
    established, styles = establish(results, match)
    if not established or not _explains_everything(results, established, styles, match):
        return carried
    models = misconceptions.MISCONCEPTIONS
    for i, (check, observed, verdict) in enumerate(results):
        if verdict.passed or not isinstance(observed, dict) or check.get("judge") in OUTCOME_JUDGES:
            continue
        others = [name for name in established if check.get("exercise") not in models[name].exercises]
        # Every established mistake of another exercise first, then fewer: a check that does
        # not reach one of them (no relu in it, say) is reproduced by the others alone.
        for size in range(len(others), 0, -1):
            found = next((subset for subset in combinations(others, size)
                          if any(match(i, set(subset), s) for s in styles)), None)
            if found:
                exercises = tuple(dict.fromkeys(e for name in found for e in models[name].exercises))
                carried[i] = Carried(found, exercises, misconceptions.words(" + ".join(found)))
                break
    return carried


def _explains_everything(results, established, styles, match):
    """Whether the established mistakes reproduce every failed check that costs points (but
    the outcome checks): only then are they the submission's whole story. A failure they do
    not reproduce is an unknown bug, and an unknown bug carries nothing: without this guard a
    model that happens to fit one check of its own exercise (a wrong sort that looks like
    sub's missing _backward on a - b) would keep the points the real bug costs."""
    names = list(established)
    for i, (check, observed, verdict) in enumerate(results):
        if verdict.passed or check.get("points", 1) <= 0 or check.get("judge") in OUTCOME_JUDGES:
            continue
        if not isinstance(observed, dict):
            return False
        if not any(match(i, set(subset), s) for size in range(len(names), 0, -1)
                   for subset in combinations(names, size) for s in styles):
            return False
    return True


def carry_verdicts(results):
    """The verdicts of ``results`` with every carried check passed: score 1, the carried
    message, no diagnoses, and ``carried`` (``Carried.as_json()``)."""
    verdicts = []
    for (_, _, verdict), why in zip(results, carry(results)):
        if why is None:
            verdicts.append(verdict)
        else:
            verdicts.append(judge.Verdict(1.0, why.message(), f"without error carried forward: {verdict.message}", [],
                                          carried=why.as_json()))
    return verdicts


def carry_tests(tests, compiled, observations, texts=None):
    """``carry_verdicts`` for the grader's test entries (dicts with "passed", "score",
    "max_score", "message", "detail", "diagnoses", in the order of ``compiled``) and each
    check's observation (``texts``: as for ``_matcher``): a carried entry gets full points,
    passed, the carried message, the failure it would have been as detail, no diagnoses and
    "carried". Returns ``tests``."""
    results = [(check, observed, judge.Verdict(1.0 if test["passed"] else 0.0, test["message"], test["detail"],
                                                list(test["diagnoses"])))
               for check, observed, test in zip(compiled, observations, tests)]
    for test, why in zip(tests, carry(results, texts)):
        if why is not None:
            test.update(score=test["max_score"], passed=True, message=why.message(),
                        detail=f"without error carried forward: {test['message']}", diagnoses=[],
                        carried=why.as_json())
            test.pop("observation", None)
    return tests

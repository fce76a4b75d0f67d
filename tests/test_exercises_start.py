"""The warm-up checker recognises the right answer and explains each wrong one."""


from course_lib.exercises.solutions.start import standardize
from course_lib.exercises.start import check_standardize


def test_solution_is_correct():
    assert check_standardize(standardize).correct


def test_wrong_answers_are_explained():
    cases = {
        "per column": lambda x: (x - x.mean()) / x.std(),
        "population std": lambda x: (x - x.mean(0)) / x.std(0),
        "NaN": lambda x: (x - x.mean(0)) / x.std(0, unbiased=False),
        "in place": lambda x: x.sub_(x.mean(0)).div_(x.std(0, unbiased=False).clamp_min(1e-12)),
        "column means": lambda x: x / x.std(0, unbiased=False),
        "shape": lambda x: ((x - x.mean(0)) / x.std(0, unbiased=False)).mean(0),
    }
    for needle, wrong in cases.items():
        verdict = check_standardize(wrong)
        assert verdict.status == "wrong" and needle in verdict.message, (needle, verdict.message)


def test_stub_is_not_attempted():
    def stub(x):
        raise NotImplementedError
    assert check_standardize(stub).status == "not attempted"

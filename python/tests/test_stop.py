"""Stop strings over streamed pieces (no model needed)."""

from halyard._stop import StopMatcher


def run(stops, pieces):
    m = StopMatcher(stops)
    out = [m.feed(p) for p in pieces]
    return out, m.flush(), m.stopped


def test_no_stop_passes_everything_through():
    assert run(None, ["a", "b"]) == (["a", "b"], "", False)


def test_text_that_may_start_a_stop_is_held_back_then_released():
    # "Pa" might begin "Paris!"; "Par" too; "Parx" cannot.
    assert run("Paris!", ["Pa", "r", "x"]) == (["", "", "Parx"], "", False)
    assert run("Paris!", ["Pa", "r"]) == (["", ""], "Par", False)


def test_a_match_across_pieces_cuts_before_it():
    # " Pa" cannot begin "ris." and goes out whole; "ris" waits; "." completes the stop.
    assert run(["ris."], [" Pa", "ris", ".", "\n"]) == ([" Pa", "", "", ""], "", True)


def test_the_earliest_stop_wins():
    assert run(["cd", "b"], ["abcd"]) == (["a"], "", True)
    assert run(["bc", "abcd"], ["abcd"]) == ([""], "", True)  # "abcd" starts first


def test_empty_stop_strings_are_ignored():
    assert run(["", "z"], ["abc"]) == (["abc"], "", False)

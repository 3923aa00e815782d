"""Message.get: the first value of a key, whatever its case, also when asked again."""
from callcenter.ami.codec import Message, Parser


def test_get_is_case_insensitive_and_the_first_of_a_repeated_key_wins():
    m = Message([("Event", "VarSet"), ("Variable", "A"), ("variable", "B"), ("Value", "1")])
    assert m.get("variable") == "A" == m["VARIABLE"] == m.get("Variable")
    assert m.getall("Variable") == ["A", "B"]
    assert m.get("Missing") is None and m.get("Missing", "x") == "x" and "Missing" not in m
    assert m.event == "VarSet" and m == Message(list(m.headers))  # the lookup index is not compared


def test_a_parsed_message_answers_like_its_headers():
    msg = Parser().feed(b"Event: Hangup\r\nUniqueid: 1.2\r\nCause: 16\r\nCause: 17\r\n\r\n")[0]
    for key in ("Event", "uniqueid", "CAUSE", "Linkedid"):
        want = next((v for n, v in msg.headers if n.lower() == key.lower()), None)
        assert msg.get(key) == want

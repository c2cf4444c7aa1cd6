"""openai_client.py talks to gen serve with the official openai client,
unchanged but for base_url, and exits non-zero at the first wrong answer.

    python openai_client.py BASE_URL MODEL   (BASE_URL ends in /v1)

Run by server/openai_test.go against models/g2p-en.
"""

import sys

import openai


def main() -> None:
    base_url, model = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(base_url=base_url, api_key="not-needed", max_retries=0, timeout=60)

    models = [m.id for m in client.models.list()]
    assert models == [model], models

    c = client.completions.create(model=model, prompt="hello", max_tokens=16, temperature=0)
    assert c.object == "text_completion", c
    assert c.choices[0].text == "HH EH L OW", c.choices[0].text
    assert c.choices[0].finish_reason == "stop", c.choices[0].finish_reason
    assert c.usage.completion_tokens == 5 and c.usage.prompt_tokens > 0, c.usage

    c = client.completions.create(model=model, prompt=["hello", "world"], max_tokens=16, temperature=0)
    assert [ch.text for ch in c.choices] == ["HH EH L OW", "W ER L D"], c.choices
    assert [ch.index for ch in c.choices] == [0, 1], c.choices

    c = client.completions.create(model=model, prompt="hello", max_tokens=2, temperature=0)
    assert c.choices[0].text == "HH EH" and c.choices[0].finish_reason == "length", c.choices[0]

    c = client.completions.create(model=model, prompt="hello", max_tokens=16, temperature=0, stop=[" L"])
    assert c.choices[0].text == "HH EH" and c.choices[0].finish_reason == "stop", c.choices[0]

    c = client.completions.create(model=model, prompt="pronunciation", max_tokens=24, n=3, temperature=0)
    assert len(c.choices) == 3 and c.choices[0].text == "P R AH N AH N S IY EY SH AH N", c.choices

    a = client.completions.create(model=model, prompt="hello", max_tokens=16, temperature=1.5, top_p=0.9, seed=7, n=2)
    b = client.completions.create(model=model, prompt="hello", max_tokens=16, temperature=1.5, top_p=0.9, seed=7, n=2)
    assert [x.text for x in a.choices] == [x.text for x in b.choices], (a.choices, b.choices)

    pieces = []
    finish = None
    for chunk in client.completions.create(model=model, prompt="hello", max_tokens=16, temperature=0, stream=True,
                                           stream_options={"include_usage": True}):
        for ch in chunk.choices:
            pieces.append(ch.text)
            finish = ch.finish_reason or finish
    assert "".join(pieces) == "HH EH L OW" and finish == "stop", (pieces, finish)

    c = client.completions.create(model=model, prompt="hello", max_tokens=16, extra_body={"num_beams": 4})
    assert c.choices[0].text == "HH EH L OW", c.choices[0].text

    try:
        client.completions.create(model=model, prompt="hello", max_tokens=100000)
    except openai.BadRequestError as e:
        assert e.status_code == 400, e
        assert "max_new_tokens" in e.message and "100000" in e.message, e.message
    else:
        raise AssertionError("max_tokens over the limit was accepted")

    try:
        client.completions.create(model="no-such-model", prompt="hello")
    except openai.NotFoundError:
        pass
    else:
        raise AssertionError("an unknown model was accepted")
    print("openai", openai.__version__, "ok")


if __name__ == "__main__":
    main()

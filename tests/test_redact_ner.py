"""The optional local NER backend (Presidio over a spaCy pipeline), on a pipeline the test builds:
no model weights are downloaded, here or at run time."""

from __future__ import annotations

import pytest
import spacy

from toolkit.export.redact import ChainRedactor, PresidioRedactor, RedactorUnavailable, RegexRedactor


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    # A rule-based spaCy pipeline saved to disk: the same loading path as an installed model package.
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([
        {"label": "PERSON", "pattern": [{"LOWER": "jordan"}, {"LOWER": "rivera"}]},
        {"label": "GPE", "pattern": "Seattle"},
        {"label": "FAC", "pattern": [{"LIKE_NUM": True}, {"LOWER": "elm"}, {"LOWER": "street"}]},
    ])
    path = tmp_path_factory.mktemp("ner") / "pipeline"
    nlp.to_disk(path)
    return str(path)


def test_masks_names_and_places(pipeline):
    r = PresidioRedactor(model=pipeline)
    text = "Hi, this is Jordan Rivera from Seattle, I live at 42 Elm Street."
    assert r.redact(text) == "Hi, this is [NAME] from [ADDRESS], I live at [ADDRESS]."
    assert r.counts == {"NAME": 1, "ADDRESS": 2}
    assert r.redact("nothing to see") == "nothing to see"


def test_chained_after_the_default(pipeline):
    chain = ChainRedactor([RegexRedactor(), PresidioRedactor(model=pipeline)])
    out = chain.redact("Jordan Rivera, jordan dot rivera at example dot com, 206 555 0142")
    assert out == "[NAME], [EMAIL], [PHONE]"
    assert chain.counts == {"NAME": 1, "EMAIL": 1, "PHONE": 1}


def test_a_missing_model_is_a_clear_error_not_a_download(tmp_path):
    with pytest.raises(RedactorUnavailable, match=r"not installed.*not downloaded") as caught:
        PresidioRedactor(model="en_core_web_missing")
    assert isinstance(caught.value, RuntimeError)
    with pytest.raises(RuntimeError, match="not installed"):
        PresidioRedactor(model=str(tmp_path / "no-such-dir"))

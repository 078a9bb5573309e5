"""The UI's two message catalogues: the same keys, every plural form each language needs,
the same placeholders (a sentence in one language never loses a number the other shows)."""

from __future__ import annotations

import re

from tests.browser.conftest import messages

PLURAL_FORMS = {"en": {"one", "other"}, "ru": {"one", "few", "many", "other"}}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def placeholders(msg: str | dict) -> set[str]:
    texts = msg.values() if isinstance(msg, dict) else [msg]
    return {p for text in texts for p in PLACEHOLDER.findall(text)}


def test_every_message_exists_in_both_languages() -> None:
    en, ru = messages("en"), messages("ru")
    assert sorted(set(en) - set(ru)) == [], "keys only in English"
    assert sorted(set(ru) - set(en)) == [], "keys only in Russian"
    assert len(en) > 500


def test_plural_messages_have_every_form_of_their_language() -> None:
    for lang, forms in PLURAL_FORMS.items():
        for key, msg in messages(lang).items():
            if isinstance(msg, dict):
                assert set(msg) >= forms, f"{lang} {key} lacks {forms - set(msg)}"
                assert all("{n}" in text for text in msg.values()), f"{lang} {key} hides n"


def test_messages_agree_on_placeholders_and_kind() -> None:
    en, ru = messages("en"), messages("ru")
    for key in en:
        assert isinstance(en[key], dict) == isinstance(ru[key], dict), f"{key}: plural in one only"
        assert placeholders(en[key]) == placeholders(ru[key]), key
        assert all(text.strip() for text in (en[key].values() if isinstance(en[key], dict)
                                             else [en[key]])), f"{key} is empty"

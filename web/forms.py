"""The page's forms, checked on the server: visitor details, the follow-up of a refusal,
and the admin's settings.

Both return clean values plus errors as catalog keys per field; nothing from a form reaches
the store or the configuration unchecked. Settings go through `edge.config` exactly like
the configuration file.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from edge.config import Config, parse_text
from edge.settings import BY_KEY
from edge.tally import REFERRAL_OUTCOMES
from sensors.errors import ConfigError
from web.overrides import PAGE_KEYS

TEXT_FIELDS = {"name": 80, "origin": 80, "host": 80, "purpose": 120}
VISITOR_FIELDS = (*TEXT_FIELDS, "stay_days", "phone", "nik")
PHONE = re.compile(r"^\+?[0-9][0-9 -]{5,19}$")
NIK = re.compile(r"^[0-9]{16}$")
MAX_STAY_DAYS = 90
CONTACT_MAX = 80
SETTING_TEXT_MAX = 100


def _clean(text: str) -> str:
    """One trimmed line: control characters dropped, every kind of space a plain one."""
    kept = (
        " " if unicodedata.category(c)[0] == "Z" else c
        for c in text
        if unicodedata.category(c)[0] != "C"
    )
    return "".join(kept).strip()


def visitor_details(
    form: Mapping[str, str], previous: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """(data for a Kind.VISITOR event, errors by field). An empty NIK keeps the previous one."""
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, limit in TEXT_FIELDS.items():
        value = _clean(form.get(name, ""))
        if len(value) > limit:
            errors[name] = "form.too_long"
        elif value:
            data[name] = value
    stay = form.get("stay_days", "").strip()
    if stay:
        # isdigit() alone passes "²" and other digits int() refuses: ASCII only.
        if not (stay.isascii() and stay.isdigit()) or len(stay) > 3 or int(stay) > MAX_STAY_DAYS:
            errors["stay_days"] = "form.bad_stay"
        else:
            data["stay_days"] = int(stay)
    phone = form.get("phone", "").strip()
    if phone:
        if PHONE.match(phone):
            data["phone"] = phone
        else:
            errors["phone"] = "form.bad_phone"
    nik = form.get("nik", "").strip()
    if nik and not NIK.match(nik):
        errors["nik"] = "form.bad_nik"
    elif nik or previous.get("nik"):
        data["nik"] = nik or previous["nik"]
    if not data and not errors:
        errors["name"] = "form.empty"
    return data, errors


def referral_follow_up(form: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(data for the follow-up note of a refusal, errors by field): where the person went
    (one of REFERRAL_OUTCOMES) and a contact (a phone number, or who took them)."""
    outcome = form.get("referral", "")
    contact = _clean(form.get("contact", ""))
    errors: dict[str, str] = {}
    if outcome not in REFERRAL_OUTCOMES:
        errors["referral"] = "referral.pick"
    if len(contact) > CONTACT_MAX:
        errors["contact"] = "form.too_long"
    if errors:
        return {}, errors
    return {"referral": outcome, "contact": contact}, {}


def settings_values(config: Config) -> dict[str, Any]:
    return {key: config[key] for key in PAGE_KEYS}


def settings_change(
    config: Config, form: Mapping[str, str]
) -> tuple[Config | None, dict[str, Any], dict[str, str]]:
    """(new config or None, changes {key: (old, new)}, errors by key) for the settings form."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key in PAGE_KEYS:
        setting = BY_KEY[key]
        if setting.type is bool:
            values[key] = form.get(key) == "on"
            continue
        text = form.get(key, "")
        if len(text) > SETTING_TEXT_MAX:
            errors[key] = "form.too_long"
            continue
        try:
            value = parse_text(setting, _clean(text))
        except ValueError:
            errors[key] = "settings.not_a_number"
            continue
        if isinstance(value, float) and not math.isfinite(value):
            errors[key] = "settings.not_a_number"  # edge.config lets NaN through its ranges
            continue
        values[key] = value
    if errors:
        return None, {}, errors
    try:
        new = config.replace(**{k.replace(".", "__"): v for k, v in values.items()})
    except ConfigError as e:
        for problem in e.problems:
            key = problem.split(":", 1)[0]
            errors[key if key in PAGE_KEYS else "post.name"] = "settings.out_of_range"
        return None, {}, errors
    changes = {k: (config[k], new[k]) for k in PAGE_KEYS if config[k] != new[k]}
    return new, changes, {}

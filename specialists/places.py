"""Regions that follow a place name after a comma: "Chicago, Illinois", "Berlin, Germany",
"Los Angeles, CA".

A request that lists such places ("in San Francisco, California and Chicago, Illinois") has
two places, not four names; and a location parameter is often meant to get the pair whole.
The lists are the US states (names and postal codes), Canada's provinces and the world's
countries, which is what "City, Region" means in practice.
"""

from __future__ import annotations

import re

__all__ = ["REGION", "region_words"]

_US_STATES = (
    "Alabama Alaska Arizona Arkansas California Colorado Connecticut Delaware Florida Georgia "
    "Hawaii Idaho Illinois Indiana Iowa Kansas Kentucky Louisiana Maine Maryland Massachusetts "
    "Michigan Minnesota Mississippi Missouri Montana Nebraska Nevada New_Hampshire New_Jersey "
    "New_Mexico New_York North_Carolina North_Dakota Ohio Oklahoma Oregon Pennsylvania "
    "Rhode_Island South_Carolina South_Dakota Tennessee Texas Utah Vermont Virginia Washington "
    "West_Virginia Wisconsin Wyoming District_of_Columbia D.C."
)
_US_CODES = (
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
    "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC"
)
_PROVINCES = (
    "Alberta British_Columbia Manitoba New_Brunswick Newfoundland Nova_Scotia Ontario Quebec "
    "Saskatchewan"
)
_COUNTRIES = (
    "Afghanistan Albania Algeria Andorra Angola Argentina Armenia Australia Austria Azerbaijan "
    "Bahamas Bahrain Bangladesh Barbados Belarus Belgium Belize Benin Bhutan Bolivia Bosnia "
    "Botswana Brazil Brunei Bulgaria Burkina_Faso Burundi Cambodia Cameroon Canada Chad Chile "
    "China Colombia Congo Costa_Rica Croatia Cuba Cyprus Czechia Czech_Republic Denmark "
    "Djibouti Dominica Dominican_Republic Ecuador Egypt El_Salvador England Eritrea Estonia "
    "Eswatini Ethiopia Fiji Finland France Gabon Gambia Germany Ghana Greece Grenada Guatemala "
    "Guinea Guyana Haiti Honduras Hungary Iceland India Indonesia Iran Iraq Ireland Israel "
    "Italy Jamaica Japan Jordan Kazakhstan Kenya Kiribati Korea South_Korea North_Korea Kosovo "
    "Kuwait Kyrgyzstan Laos Latvia Lebanon Lesotho Liberia Libya Liechtenstein Lithuania "
    "Luxembourg Madagascar Malawi Malaysia Maldives Mali Malta Mauritania Mauritius Mexico "
    "Moldova Monaco Mongolia Montenegro Morocco Mozambique Myanmar Namibia Nepal Netherlands "
    "New_Zealand Nicaragua Niger Nigeria Norway Oman Pakistan Palau Panama Paraguay Peru "
    "Philippines Poland Portugal Qatar Romania Russia Rwanda Samoa San_Marino Saudi_Arabia "
    "Scotland Senegal Serbia Seychelles Sierra_Leone Singapore Slovakia Slovenia Somalia "
    "South_Africa Spain Sri_Lanka Sudan Suriname Sweden Switzerland Syria Taiwan Tajikistan "
    "Tanzania Thailand Togo Tonga Tunisia Turkey Turkmenistan Tuvalu Uganda Ukraine "
    "United_Arab_Emirates UAE United_Kingdom UK United_States USA US Uruguay Uzbekistan "
    "Vanuatu Venezuela Vietnam Wales Yemen Zambia Zimbabwe"
)


def _alternatives(names: str) -> str:
    words = sorted((n.replace("_", " ") for n in names.split()), key=len, reverse=True)
    return "|".join(re.escape(w) for w in words)


#: A region written after a place and a comma; the postal codes only in capitals.
REGION = re.compile(
    rf"(?:(?i:{_alternatives(_US_STATES + ' ' + _PROVINCES + ' ' + _COUNTRIES)})"
    rf"|(?:{_alternatives(_US_CODES)}))(?![\w'-])"
)


def region_words(words: list[str], start: int) -> int:
    """How many of ``words`` from ``start`` spell a region (0 if they do not). Only a region
    that begins with a capital counts: "in new york" is not read as a place pair."""
    if start >= len(words) or not words[start][:1].isupper():
        return 0
    for size in (3, 2, 1):
        span = " ".join(w.strip(" ,.;:!?()\"'") for w in words[start : start + size])
        if len(words) - start >= size and REGION.fullmatch(span):
            return size
    return 0

"""Regions that follow a place name after a comma: "Chicago, Illinois", "Berlin, Germany",
"Los Angeles, CA".

A request that lists such places ("in San Francisco, California and Chicago, Illinois") has
two places, not four names; and a location parameter is often meant to get the pair whole.
The lists are the US states (names and postal codes), Canada's provinces and the world's
countries, which is what "City, Region" means in practice. A table of US cities and their
states gives a bare city the "City, State" form a parameter's description asks for.
"""

from __future__ import annotations

import re

__all__ = ["REGION", "in_city_state_format", "region_words", "same_state", "state_of"]

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


# The largest US cities and a few more that requests name often, with their states; a name
# that several states share goes to its largest city (Portland, Oregon; Kansas City, Missouri).
_US_CITIES = (
    "New_York:NY New_York_City:NY Los_Angeles:CA Chicago:IL Houston:TX Phoenix:AZ "
    "Philadelphia:PA San_Antonio:TX San_Diego:CA Dallas:TX San_Jose:CA Austin:TX "
    "Jacksonville:FL Fort_Worth:TX Columbus:OH Charlotte:NC San_Francisco:CA Indianapolis:IN "
    "Seattle:WA Denver:CO Washington:DC Boston:MA El_Paso:TX Nashville:TN Detroit:MI "
    "Oklahoma_City:OK Portland:OR Las_Vegas:NV Memphis:TN Louisville:KY Baltimore:MD "
    "Milwaukee:WI Albuquerque:NM Tucson:AZ Fresno:CA Mesa:AZ Sacramento:CA Atlanta:GA "
    "Kansas_City:MO Colorado_Springs:CO Omaha:NE Raleigh:NC Miami:FL Long_Beach:CA "
    "Virginia_Beach:VA Oakland:CA Minneapolis:MN Tulsa:OK Tampa:FL Arlington:TX "
    "New_Orleans:LA Wichita:KS Cleveland:OH Bakersfield:CA Aurora:CO Anaheim:CA Honolulu:HI "
    "Santa_Ana:CA Riverside:CA Corpus_Christi:TX Lexington:KY Stockton:CA Henderson:NV "
    "Saint_Paul:MN St._Paul:MN St._Louis:MO Saint_Louis:MO Cincinnati:OH Pittsburgh:PA "
    "Greensboro:NC Anchorage:AK Plano:TX Lincoln:NE Orlando:FL Irvine:CA Newark:NJ "
    "Toledo:OH Durham:NC Chula_Vista:CA Fort_Wayne:IN Jersey_City:NJ St._Petersburg:FL "
    "Laredo:TX Madison:WI Chandler:AZ Buffalo:NY Lubbock:TX Scottsdale:AZ Reno:NV "
    "Glendale:AZ Gilbert:AZ Winston-Salem:NC Norfolk:VA Chesapeake:VA Garland:TX Irving:TX "
    "Hialeah:FL Fremont:CA Boise:ID Richmond:VA Baton_Rouge:LA Spokane:WA Des_Moines:IA "
    "Tacoma:WA San_Bernardino:CA Modesto:CA Fontana:CA Santa_Clarita:CA Birmingham:AL "
    "Oxnard:CA Fayetteville:NC Moreno_Valley:CA Rochester:NY Huntington_Beach:CA "
    "Salt_Lake_City:UT Grand_Rapids:MI Amarillo:TX Yonkers:NY Montgomery:AL Akron:OH "
    "Little_Rock:AR Huntsville:AL Augusta:GA Knoxville:TN Providence:RI "
    "Chattanooga:TN Savannah:GA Charleston:SC Palo_Alto:CA Berkeley:CA Mountain_View:CA "
    "Sunnyvale:CA Santa_Clara:CA Cupertino:CA Santa_Monica:CA Pasadena:CA Santa_Barbara:CA "
    "Santa_Fe:NM Hartford:CT New_Haven:CT Cambridge:MA Ann_Arbor:MI Princeton:NJ "
    "Brooklyn:NY Manhattan:NY Queens:NY Bronx:NY Staten_Island:NY Hollywood:CA Malibu:CA "
    "Napa:CA Aspen:CO Boulder:CO Key_West:FL Fort_Lauderdale:FL Miami_Beach:FL "
    "Myrtle_Beach:SC Asheville:NC Burlington:VT Juneau:AK Sedona:AZ "
    "Flagstaff:AZ Scranton:PA Albany:NY Syracuse:NY Trenton:NJ Dover:DE Annapolis:MD "
    "Harrisburg:PA Springfield:IL Tallahassee:FL Topeka:KS Salem:OR Olympia:WA Helena:MT "
    "Cheyenne:WY Bismarck:ND Pierre:SD Concord:NH Montpelier:VT"
)
_STATE_CODES = dict(
    zip(
        _US_CODES.split(),
        [s.replace("_", " ") for s in _US_STATES.split()[:-1]],  # D.C. is the same as DC
        strict=True,
    )
)
_CITY_STATE = {
    city.replace("_", " ").lower(): code
    for city, code in (pair.split(":") for pair in _US_CITIES.split())
}
#: "The city and state, e.g. Los Angeles, CA": the example tells the format.
_CITY_AND_STATE = re.compile(
    r"city\s+and\s+state.*?\b(?:e\.g\.|eg\.?|for example|such as|like)\s*:?\s*"
    r"[A-Z][\w.' -]*,\s*(?P<state>[A-Z][A-Za-z ]+)",
    re.IGNORECASE | re.DOTALL,
)


def same_state(name: str) -> frozenset[str]:
    """The other name of a US state: its code for its name and its name for its code."""
    key = name.strip()
    if key.upper() in _STATE_CODES:
        return frozenset({_STATE_CODES[key.upper()]})
    code = next((c for c, n in _STATE_CODES.items() if n.lower() == key.lower()), None)
    return frozenset({code}) if code else frozenset()


def state_of(city: str) -> frozenset[str]:
    """The state of a US city in the table, by code and by name ("Austin" -> TX, Texas);
    empty for a city the table does not hold."""
    code = _CITY_STATE.get(city.strip().lower())
    return frozenset({code, _STATE_CODES[code]}) if code else frozenset()


def in_city_state_format(value: str, description: str) -> str:
    """A bare US city in the "City, State" form that a parameter's description asks for
    ("Los Angeles" -> "Los Angeles, CA" when it says "The city and state, e.g. Boston, MA";
    the state's name when the example spells it). Anything else is returned as it is."""
    match = _CITY_AND_STATE.search(description)
    code = _CITY_STATE.get(value.strip().lower())
    if not match or not code or "," in value:
        return value
    example = match.group("state").strip()
    spelled = len(example) > 2 and example.upper() != example
    return f"{value.strip()}, {_STATE_CODES[code] if spelled else code}"


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

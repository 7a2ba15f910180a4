"""Clinical tables through their mapping: canonical names, unit kinds, row consistency,
separators and encodings (mtnet.io.clinical)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from ingest_fixtures import CLINICAL_ROW

from mtnet.errors import InputError
from mtnet.io import clinical


def table(tmp_path, n=3, name="t.csv", rename=None, changes=None, **csv):
    rows = [dict(CLINICAL_ROW, patient_id=f"P-{i}") for i in range(1, n + 1)]
    for i, change in (changes or {}).items():
        rows[i].update(change)
    df = pd.DataFrame(rows).rename(columns=rename or {})
    path = tmp_path / name
    df.to_csv(path, index=False, **csv)
    return path


def mapping(tmp_path, columns=None, **more):
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump({"id_column": "patient_id", "columns": columns or {}, **more},
                                   sort_keys=False))
    return path


def error(path, mapping_path=None) -> str:
    with pytest.raises(InputError) as err:
        clinical.load_clinical(path, "C", mapping_path)
    return str(err.value)


def test_a_mapping_of_the_renamed_columns_only_keeps_the_others(tmp_path):
    """The issue's case: a mapping listing only what it renames took every other canonical
    column as NA 'not in the source table' although the table had them."""
    path = table(tmp_path, rename={"age": "Age_y", "os_days": "OS_weeks"},
                 changes={0: {"os_days": 10, "time_to_mvi_days": 50}})
    m = mapping(tmp_path, {"age": {"from": "Age_y"}, "os_days": {"from": "OS_weeks", "unit": "weeks"}},
                missing={"enhancement_ratio": "not measured here"})
    result = clinical.load_clinical(path, "C", m)
    t = result.table
    assert t.age.tolist() == [61] * 3 and t.os_days.tolist()[0] == 70
    for column in ("sex", "bclc", "afp_ng_ml", "mvi", "time_to_mvi_days", "capsule"):
        assert t[column].notna().all(), column
    assert t.enhancement_ratio.isna().all()  # the mapping says otherwise
    assert result.missing.values.tolist() == [["enhancement_ratio", "not measured here", "declared"]]


def test_missing_columns_tell_not_in_the_table_from_not_mapped(tmp_path):
    path = table(tmp_path, rename={"age": "AGE"})
    df = pd.read_csv(path).drop(columns=["hbv"])
    df.to_csv(path, index=False)
    missing = clinical.load_clinical(path, "C").missing.set_index("column")
    assert missing.loc["age", "status"] == "not_mapped"
    assert missing.loc["age", "reason"] == ("not mapped: the table has an unused column 'AGE' "
                                            "(map it: age: {from: AGE})")
    assert missing.loc["hbv"].tolist() == ["not in the source table", "not_in_table"]


@pytest.mark.parametrize("column, unit, text", [
    ("os_days", "cm", "column 'os_days': unit 'cm' is a length unit, but os_days is a time (days)"),
    ("max_diameter_mm", "months", "column 'max_diameter_mm': unit 'months' is a time unit, but "
                                  "max_diameter_mm is a length (mm)"),
    ("afp_ng_ml", "weeks", "unit 'weeks' is a time unit, but afp_ng_ml is a concentration (ng/mL)"),
    ("sex", "mm", "column 'sex' takes no unit"),
    ("age", "furlongs", "column 'age': unknown unit 'furlongs' (known: time: days"),
])
def test_a_unit_of_the_wrong_kind_names_the_mapping_line(tmp_path, column, unit, text):
    m = mapping(tmp_path, {"bclc": {"from": "bclc"}, column: {"from": column, "unit": unit}})
    message = error(table(tmp_path), m)
    assert message.startswith(f"center C, {m}:7: ")  # line 7: the unit's line
    assert text in message


def test_an_extra_column_s_unit_kind_comes_from_its_name(tmp_path):
    path = table(tmp_path)
    m = mapping(tmp_path, extra={"ttp_days": {"from": "os_days", "unit": "cm"}})
    assert "column 'ttp_days': unit 'cm' is a length unit, but ttp_days is a time (days)" in error(path, m)
    m = mapping(tmp_path, extra={"ttp_days": {"from": "os_days", "unit": "weeks"}})
    assert clinical.load_clinical(path, "C", m).table.ttp_days.tolist() == [6300.0] * 3


def test_age_in_years_is_not_multiplied_and_a_wrong_age_unit_is_named(tmp_path):
    path = table(tmp_path, rename={"age": "Age"})
    m = mapping(tmp_path, {"age": {"from": "Age", "unit": "years"}})
    assert clinical.load_clinical(path, "C", m).table.age.tolist() == [61] * 3
    m = mapping(tmp_path, {"age": {"from": "Age", "unit": "months"}})
    message = error(path, m)
    assert "column age: implausible median 5.08 over 3 patient(s) (expected 18-100 years) after " \
           f"converting from 'months' ({m}:5): is that the source column's unit?" in message
    path = table(tmp_path, changes={0: {"age": 20819.2}})
    assert "patient P-1, column age: value 20819.2 out of range (0-120)" in error(path)


def test_concentrations_convert_to_ng_per_ml(tmp_path):
    path = table(tmp_path, rename={"afp_ng_ml": "AFP_IU"})
    m = mapping(tmp_path, {"afp_ng_ml": {"from": "AFP_IU", "unit": "IU/mL"}})
    assert np.allclose(clinical.load_clinical(path, "C", m).table.afp_ng_ml, 120.5 * 1.21)


@pytest.mark.parametrize("change, text", [
    ({"time_to_mvi_days": 2000}, "patient P-2, column time_to_mvi_days: time to MVI 2000 days after "
                                 "the end of follow-up (os_days 900)"),
    ({"capsule": 0, "capsule_breakthrough": 1}, "patient P-2, column capsule_breakthrough: capsule "
                                                "breakthrough without a capsule"),
    ({"child_pugh": "C", "bclc": "B"}, "patient P-2, column bclc: Child-Pugh C with BCLC stage B "
                                       "(Child-Pugh C is BCLC D)"),
    ({"max_diameter_mm": "6,2"}, "column max_diameter_mm: not a number: '6,2' (a decimal comma?"),
    ({"os_days": "inf"}, "patient P-2, column os_days: not a finite number: inf"),
])
def test_fields_that_contradict_their_row(tmp_path, change, text):
    assert text in error(table(tmp_path, changes={1: change}))


def test_consistent_rows_pass_and_na_never_contradicts(tmp_path):
    path = table(tmp_path, changes={1: {"time_to_mvi_days": None, "mvi": 0},
                                    2: {"child_pugh": "C", "bclc": "D"}})
    assert len(clinical.load_clinical(path, "C").table) == 3


def test_a_semicolon_csv_says_so(tmp_path):
    message = error(table(tmp_path, sep=";"))
    assert message == (f"center C, {tmp_path / 't.csv'}: the table reads as one column: its header "
                       f"is semicolon-separated, not comma-separated as .csv says (fix: export it "
                       f"comma-separated (or as .xlsx))")
    message = error(table(tmp_path, name="t.tsv"))
    assert "its header is comma-separated, not tab-separated as .tsv says" in message


def test_encodings_other_than_utf8_say_so(tmp_path):
    latin = table(tmp_path, changes={1: {"location": "lobe droit, près du hile"}}, encoding="latin-1")
    assert "the table is not UTF-8: byte 0xe8 on line 3 (it looks Latin-1 / Windows-1252 encoded)" \
        in error(latin)
    utf16 = table(tmp_path, name="u.csv", encoding="utf-16")
    assert "the table is UTF-16 encoded" in error(utf16)
    bom = table(tmp_path, name="b.csv", encoding="utf-8-sig")  # Excel's CSV UTF-8: fine
    assert clinical.load_clinical(bom, "C").table.patient_id.tolist() == ["P-1", "P-2", "P-3"]

"""The synthetic cohort (mtnet.synth): Table 1 marginals and exact event counts of the
`paper` preset, Bayes-optimal ceilings, determinism, DICOM / DICOM-SEG files, tumor geometry,
the synth -> ingest contract (docs/data_contracts.md) and the `mtnet synth` command."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
import yaml
from scipy import ndimage
from skimage.measure import regionprops

from conftest import REPO, run_snakemake
from mtnet import cli
from mtnet.config import SCHEMA_PATH, read_yaml
from mtnet.factors import CANONICAL_COLUMNS
from mtnet.synth import draw_center_table, write_center
from mtnet.synth.model import population_model
from mtnet.synth.writers import read_dicom_seg_mask

SEED = 7
PAPER_CENTERS = {"YPH": "train", "ZPH": "train", "SPH": "train", "NFH": "train", "ZCPH": "external"}

# Fu et al. 2021, Table 1 (training N = 281, validation N = 85). Child-Pugh A is printed as
# 200 / 85, which does not add up; A = N - B is what a consistent table gives.
PAPER_TABLE1 = {
    "train": {
        "n": 281, "events": 35,
        "sex": {"M": 235, "F": 46},
        "treatment": {"resection": 79, "TACE": 196, "ablation": 6},
        "hbv": {1: 260, 0: 21},
        "cirrhosis": {1: 161, 0: 120},
        "child_pugh": {"B": 36},
        "bclc": {"0": 32, "A": 169, "B": 80},
        "lesions": {"1": 188, "2": 46, "3": 22, ">3": 25},
        "afp": {"<25": 120, "25-400": 80, ">400": 81},
        "age_mean": 55.1, "diameter_median": 61.9,
    },
    "external": {
        "n": 85, "events": 10,
        "sex": {"M": 68, "F": 17},
        "treatment": {"resection": 18, "TACE": 52, "ablation": 15},
        "hbv": {1: 82, 0: 3},
        "cirrhosis": {1: 53, 0: 32},
        "child_pugh": {"B": 11},
        "bclc": {"0": 1, "A": 64, "B": 20},
        "lesions": {"1": 66, "2": 7, "3": 3, ">3": 9},
        "afp": {"<25": 31, "25-400": 22, ">400": 32},
        "age_mean": 60.6, "diameter_median": 67.0,
    },
}


def _paper_tables() -> dict[str, pd.DataFrame]:
    tables = {
        c: draw_center_table({"preset": "paper", "center": c, "role": r}, SEED)
        for c, r in PAPER_CENTERS.items()
    }
    return {
        "train": pd.concat([t for c, t in tables.items() if PAPER_CENTERS[c] == "train"]),
        "external": tables["ZCPH"],
        **tables,
    }


@pytest.fixture(scope="module")
def paper_tables():
    return _paper_tables()


def _close(observed: int, expected: int, n: int) -> bool:
    return abs(observed - expected) <= 5 or abs(observed - expected) / n <= 0.03


@pytest.mark.parametrize("role", ["train", "external"])
def test_paper_preset_matches_table1(paper_tables, role):
    df, ref = paper_tables[role], PAPER_TABLE1[role]
    assert len(df) == ref["n"]
    assert int(df["mvi"].sum()) == ref["events"]
    lesions = pd.cut(df["lesion_number"], [0, 1, 2, 3, 99], labels=["1", "2", "3", ">3"]).astype(str)
    afp = pd.cut(df["afp_ng_ml"], [0, 25, 400, np.inf], right=False, labels=["<25", "25-400", ">400"]).astype(str)
    observed = {
        "sex": df["sex"], "treatment": df["treatment"], "hbv": df["hbv"], "cirrhosis": df["cirrhosis"],
        "child_pugh": df["child_pugh"], "bclc": df["bclc"], "lesions": lesions, "afp": afp,
    }
    for factor, values in observed.items():
        counts = values.value_counts()
        for level, expected in ref[factor].items():
            got = int(counts.get(level, 0))
            assert _close(got, expected, ref["n"]), (role, factor, level, got, expected)
    assert abs(df["age"].mean() - ref["age_mean"]) < 2.0
    assert abs(df["max_diameter_mm"].median() / ref["diameter_median"] - 1) < 0.1
    assert df["max_diameter_mm"].between(7, 198).all()


def test_paper_preset_event_counts_exact_per_center(paper_tables):
    expected = {"YPH": 8, "ZPH": 15, "SPH": 7, "NFH": 5, "ZCPH": 10}
    for center, k in expected.items():
        df = paper_tables[center]
        assert int(df["mvi"].sum()) == k
        assert df["patient_id"].str.fullmatch(rf"{center}-\d{{4}}").all()
        assert df["patient_id"].is_unique
    train = paper_tables["train"]
    # censoring at >= 365 days for non-events; OS never shorter than the time to MVI
    assert (train.loc[train["mvi"] == 0, "time_to_mvi_days"] >= 365).all()
    assert (train["os_days"] >= train["time_to_mvi_days"] - 1).all()
    # higher true risk among the events: the drawn outcomes follow the model
    assert train.loc[train["mvi"] == 1, "risk_true"].mean() > 1.5 * train.loc[train["mvi"] == 0, "risk_true"].mean()


@pytest.mark.parametrize("role,rate", [("train", 35 / 281), ("external", 10 / 85), ("external", 235 / 2000)])
def test_ceilings_near_targets(role, rate):
    # the images carry the paper's added value: clinical 0.77, image 0.80, both 0.87 (±0.02)
    auc = population_model(role, round(rate, 6), SEED)["auc"]
    targets = {"clinical": 0.77, "image": 0.80, "both": 0.87}
    for info, target in targets.items():
        assert abs(auc[info] - target) <= 0.02, (info, auc[info])
    assert auc["both"] - auc["clinical"] >= 0.08 and auc["both"] - auc["image"] >= 0.05


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


SMALL = {"preset": "tiny", "n_patients": 5, "n_events": 1}


@pytest.fixture(scope="module")
def dicom_center(tmp_path_factory):
    out = tmp_path_factory.mktemp("TB")
    settings = {**SMALL, "center": "TB", "role": "train"}
    write_center(settings, SEED, out / "data", out / "truth")
    return out


def test_same_seed_same_bytes_other_seed_differs(dicom_center, tmp_path):
    settings = {**SMALL, "center": "TB", "role": "train"}
    write_center(settings, SEED, tmp_path / "a" / "data", tmp_path / "a" / "truth")
    assert _tree_digest(tmp_path / "a") == _tree_digest(dicom_center)
    write_center(settings, SEED + 1, tmp_path / "b" / "data", tmp_path / "b" / "truth")
    other = _tree_digest(tmp_path / "b")
    same = _tree_digest(dicom_center)
    assert other["data/clinical.xlsx"] != same["data/clinical.xlsx"]
    assert other["truth/liver_masks/TB-0001.nii.gz"] != same["truth/liver_masks/TB-0001.nii.gz"]


def test_nifti_center_same_seed_same_bytes(tmp_path):
    settings = {**SMALL, "n_patients": 3, "center": "TA", "role": "train"}
    for run in ("a", "b"):
        write_center(settings, SEED, tmp_path / run / "data", tmp_path / run / "truth")
    first, second = _tree_digest(tmp_path / "a"), _tree_digest(tmp_path / "b")
    assert "data/images/TA-0001.nii.gz" in first and "truth/ceilings.json" in first
    assert first == second


def test_dicom_series_loads_at_scanner_spacing(dicom_center):
    data = dicom_center / "data"
    truth_liver = sitk.ReadImage(str(dicom_center / "truth" / "liver_masks" / "TB-0002.nii.gz"))
    folder = data / "images" / "TB-0002"  # (seed 7) has an arterial decoy beside the portal series
    reader = sitk.ImageSeriesReader()
    series = {pydicom.dcmread(reader.GetGDCMSeriesFileNames(str(folder), u)[0]).SeriesDescription: u
              for u in reader.GetGDCMSeriesIDs(str(folder))}
    assert sorted(series) == ["ARTERIAL PHASE SYNTHETIC", "PORTAL PHASE SYNTHETIC"]
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder), series["PORTAL PHASE SYNTHETIC"]))
    img = reader.Execute()
    assert np.allclose(img.GetSpacing(), (3.2, 3.2, 6.0))
    assert img.GetSize() == truth_liver.GetSize()
    assert np.allclose(img.GetOrigin(), truth_liver.GetOrigin(), atol=1e-3)
    assert np.allclose(img.GetDirection(), np.eye(3).ravel())
    hu = sitk.GetArrayFromImage(img)
    liver = sitk.GetArrayFromImage(truth_liver) > 0
    assert hu.min() >= -1024 and 60 < np.median(hu[liver]) < 140  # portal-phase liver in HU
    files = sorted(folder.glob("S03_*.dcm"))
    slices = sorted((pydicom.dcmread(f) for f in files), key=lambda d: float(d.ImagePositionPatient[2]))
    z = np.array([float(d.ImagePositionPatient[2]) for d in slices])
    assert np.allclose(np.diff(z), 6.0)
    first = slices[0]
    assert [float(v) for v in first.PixelSpacing] == [3.2, 3.2]
    assert float(first.SliceThickness) == 6.0
    assert [float(v) for v in first.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert float(first.RescaleIntercept) == -1024 and float(first.RescaleSlope) == 1
    assert "SYNTHETIC" in first.SeriesDescription and "PORTAL" in first.SeriesDescription.upper()
    assert "SYNTHETIC" in first.StudyDescription and "SYNTHETIC" in str(first.PatientName)


def test_jpeg_ls_center_holds_the_same_pixels_and_ingests_alike(dicom_center, tmp_path):
    """`dicom_compression: jpeg-ls` changes the transfer syntax and the bytes, never a pixel:
    the center's slices decode to the uncompressed center's and ingest to the same NIfTI."""
    from ingest_fixtures import outputs_for
    from ingest_fixtures import settings as ingest_settings
    from mtnet.io import ingest_center

    settings = {**SMALL, "center": "TB", "role": "train", "dicom_compression": "jpeg-ls"}
    write_center(settings, SEED, tmp_path / "jls" / "data", tmp_path / "jls" / "truth")
    plain, packed = dicom_center / "data" / "images", tmp_path / "jls" / "data" / "images"
    files = sorted(p.relative_to(plain) for p in plain.rglob("*.dcm"))
    assert files == sorted(p.relative_to(packed) for p in packed.rglob("*.dcm"))
    for name in files:
        a, b = pydicom.dcmread(plain / name), pydicom.dcmread(packed / name)
        assert a.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert b.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.80"  # JPEG-LS lossless
        assert a.SOPInstanceUID == b.SOPInstanceUID and a.BitsStored == b.BitsStored == 12
        assert np.array_equal(a.pixel_array, b.pixel_array)
    size = lambda root: sum(p.stat().st_size for p in root.rglob("*.dcm"))  # noqa: E731
    assert size(packed) < 0.7 * size(plain)
    images = {}
    for name, root in (("plain", dicom_center), ("packed", tmp_path / "jls")):
        out = outputs_for(tmp_path / name, "TB")
        ingest_center("TB", {"data": str(root / "data")}, out, ingest_settings(), threads=1)
        images[name] = {p.name: sitk.GetArrayFromImage(sitk.ReadImage(str(p)))
                        for p in sorted(Path(out["images"]).glob("*.nii.gz"))}
    assert images["plain"].keys() == images["packed"].keys() and len(images["plain"]) == 5
    for pid, arr in images["plain"].items():
        assert np.array_equal(arr, images["packed"][pid]), pid


def test_dicom_seg_round_trips_to_truth_mask(dicom_center):
    data = dicom_center / "data"
    for pid in ("TB-0001", "TB-0002"):
        seg = read_dicom_seg_mask(data / "tumor_masks" / f"{pid}.dcm", data / "images" / pid)
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(dicom_center / "truth" / "tumor_masks" / f"{pid}.nii.gz")))
        assert seg.shape == truth.shape and truth.sum() > 0
        assert np.array_equal(seg, truth)
    ds = pydicom.dcmread(data / "tumor_masks" / "TB-0001.dcm")
    assert ds.Modality == "SEG" and ds.SegmentSequence[0].SegmentNumber == 1
    assert ds.SegmentSequence[0].SegmentLabel == "tumor"


def test_dicom_identity_is_synthetic_and_recorded(dicom_center):
    ids = pd.read_csv(dicom_center / "truth" / "dicom_identifiers.tsv", sep="\t", dtype=str)
    assert len(ids) == 5
    for row in ids.itertuples():
        ds = pydicom.dcmread(next((dicom_center / "data" / "images" / row.patient_id).glob("S03_*.dcm")))
        assert str(ds.PatientName) == row.PatientName and ds.PatientID == row.PatientID
        assert ds.PatientBirthDate == row.PatientBirthDate
        assert row.patient_id not in (row.PatientID, row.PatientName)


def test_center_follows_the_ingest_contract(dicom_center):
    data, truth = dicom_center / "data", dicom_center / "truth"
    entry = read_yaml(data / "center.yaml")
    assert "SYNTHETIC" in (data / "center.yaml").read_text().splitlines()[0]
    schema = yaml.safe_load(Path(SCHEMA_PATH).read_text())
    center_schema = {**schema["$defs"]["center"], "$defs": schema["$defs"]}
    jsonschema.validate({**entry, "role": "train"}, center_schema)
    assert entry["image_format"] == "dicom" and entry["tumor_mask_format"] == "dicom-seg"
    for key in ("images", "tumor_masks", "liver_masks", "clinical"):
        assert (data / entry[key]).exists(), key
    table = pd.read_excel(data / entry["clinical"], sheet_name=entry["clinical_sheet"])
    assert list(table.columns) == list(CANONICAL_COLUMNS)
    assert "SYNTHETIC" in pd.read_excel(data / entry["clinical"], sheet_name="README").to_string()
    pids = sorted(table["patient_id"])
    assert sorted(p.name for p in (data / "images").iterdir()) == pids
    assert sorted(p.name for p in (data / "liver_masks").iterdir()) == [f"{p}.nii.gz" for p in pids]
    # truth is never inside data/, and nothing of the truth is in the clinical table
    names = {p.name for p in data.rglob("*")}
    assert not names & {"patients.tsv", "ceilings.json", "dicom_identifiers.tsv"}
    assert not [c for c in table.columns if c.startswith(("risk", "trait", "eta"))]
    assert (truth / "patients.tsv").exists() and (truth / "ceilings.json").exists()
    assert sorted(p.name for p in (truth / "liver_masks").iterdir()) == [f"{p}.nii.gz" for p in pids]
    ceil = json.loads((truth / "ceilings.json").read_text())
    assert ceil["synthetic"] and set(ceil["auc"]) == {"clinical", "image", "both"} and ceil["method"]
    # beside each ceiling, its Bayes risk's AUC on this centre's patients (for paired gaps)
    from sklearn.metrics import roc_auc_score

    patients = pd.read_csv(truth / "patients.tsv", sep="\t")
    assert set(ceil["auc_in_center"]) == set(ceil["auc"]) and ceil["auc_in_center_method"]
    for info, column in {"clinical": "risk_clinical", "image": "risk_image", "both": "risk_true"}.items():
        assert ceil["auc_in_center"][info] == pytest.approx(roc_auc_score(patients["mvi"], patients[column]), abs=1e-4)


def test_external_center_nifti_csv_without_liver_masks(tmp_path):
    rc = cli.main(["synth", "--preset", "tiny", "--center", "TX", "--role", "external", "--seed", str(SEED),
                   "--n-patients", "4", "--n-events", "1", "--out", str(tmp_path)])
    assert rc == 0
    data, truth = tmp_path / "data", tmp_path / "truth"
    entry = read_yaml(data / "center.yaml")
    assert "liver_masks" not in entry and not (data / "liver_masks").exists()
    table = pd.read_excel(data / entry["clinical"]) if entry["clinical"].endswith("xlsx") else pd.read_csv(data / entry["clinical"])
    assert list(table.columns) == list(CANONICAL_COLUMNS) and int(table["mvi"].sum()) == 1
    img = sitk.ReadImage(str(data / "images" / "TX-0001.nii.gz"))
    assert "SYNTHETIC" in img.GetMetaData("descrip")
    mask = sitk.ReadImage(str(data / "tumor_masks" / "TX-0001.nii.gz"))
    assert mask.GetSize() == img.GetSize() and np.allclose(mask.GetSpacing(), img.GetSpacing())
    assert np.allclose(img.GetDirection(), np.eye(3).ravel())
    assert (truth / "liver_masks" / "TX-0001.nii.gz").exists()


def test_tumors_inside_liver_sized_by_table(dicom_center):
    truth = dicom_center / "truth"
    table = pd.read_csv(truth / "patients.tsv", sep="\t")
    for row in table.itertuples():
        t_img = sitk.ReadImage(str(truth / "tumor_masks" / f"{row.patient_id}.nii.gz"))
        tumor = sitk.GetArrayFromImage(t_img) > 0
        liver = sitk.GetArrayFromImage(sitk.ReadImage(str(truth / "liver_masks" / f"{row.patient_id}.nii.gz"))) > 0
        assert tumor.any() and not (tumor & ~liver).any()
        lab, n = ndimage.label(tumor)
        assert n == row.n_lesions_rendered
        spacing = t_img.GetSpacing()[0]
        longest = max(
            p.feret_diameter_max * spacing
            for z in range(tumor.shape[0]) if tumor[z].any()
            for p in regionprops(lab[z])
        )
        assert abs(longest - row.max_diameter_mm) <= 0.1 * row.max_diameter_mm + spacing, (row.patient_id, longest)


def test_benchmark_preset_sizes():
    from mtnet.synth.presets import center_preset

    train = {c: center_preset({"preset": "benchmark", "center": c, "role": "train"}) for c in ("YPH", "ZPH", "SPH", "NFH")}
    paper = {c: center_preset({"preset": "paper", "center": c, "role": "train"}) for c in train}
    # the paper's training centres at 4x their size: 1,124 patients, 140 events
    assert sum(cp.n_patients for cp in train.values()) == 1124 and sum(cp.n_events for cp in train.values()) == 140
    for c, cp in train.items():
        assert (cp.n_patients, cp.n_events) == (4 * paper[c].n_patients, 4 * paper[c].n_events)
        assert cp.scanner == paper[c].scanner and cp.image_format == paper[c].image_format
    ext = center_preset({"preset": "benchmark", "center": "ZCPH", "role": "external"})
    assert (ext.n_patients, ext.n_events) == (2000, 235)  # the paper's external rate, 10/85
    assert (sum(paper[c].n_patients for c in paper), sum(paper[c].n_events for c in paper)) == (281, 35)
    # the 2,000-patient external centre keeps Table 1's proportions (quota: ±1 patient) and its events
    table = draw_center_table({"preset": "benchmark", "center": "ZCPH", "role": "external"}, SEED)
    ref = PAPER_TABLE1["external"]
    assert len(table) == 2000 and int(table["mvi"].sum()) == 235
    for factor in ("sex", "treatment", "bclc", "hbv", "cirrhosis"):
        counts = table[factor].value_counts()
        for level, expected in ref[factor].items():
            assert abs(counts.get(level, 0) - 2000 * expected / ref["n"]) <= 1, (factor, level)


def test_center_overrides_and_bad_settings():
    from mtnet.errors import InputError
    from mtnet.synth.presets import center_preset

    cp = center_preset({"preset": "demo", "center": "YPH", "role": "train"})
    assert (cp.n_patients, cp.n_events, cp.image_format) == (24, 3, "nifti")
    cp = center_preset({"preset": "demo", "center": "SPH", "role": "train"})
    assert (cp.image_format, cp.tumor_mask_format, cp.clinical_format) == ("dicom", "dicom-seg", "xlsx")
    assert cp.dicom_compression == "jpeg-ls"
    cp = center_preset({"preset": "demo", "center": "SPH", "role": "train", "image_format": "nifti",
                        "tumor_mask_format": "nifti"})
    assert cp.dicom_compression == "none"  # NIfTI has no transfer syntax
    cp = center_preset({"preset": "paper", "center": "NEWHOSP", "role": "external", "n_patients": 170})
    assert (cp.n_patients, cp.n_events) == (170, 20)  # the role's rate, 10/85
    cp = center_preset({"preset": "tiny", "center": "TB", "role": "train", "image_format": "nifti",
                        "tumor_mask_format": "nifti", "n_events": 5})
    assert (cp.image_format, cp.n_events) == ("nifti", 5)
    with pytest.raises(InputError, match="center YPH.*n_events=30"):
        center_preset({"preset": "demo", "center": "YPH", "role": "train", "n_events": 30})
    with pytest.raises(InputError, match="dicom-seg needs DICOM"):
        center_preset({"preset": "tiny", "center": "TA", "role": "train", "tumor_mask_format": "dicom-seg"})


@pytest.mark.slow
def test_synth_rule_writes_a_center(tmp_path):
    result = run_snakemake(
        ["--cores", "1", "results/synth/TA/data", "results/synth/TA/truth"],
        tmp_path, configfiles=[REPO / "config" / "tiny.yaml"],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = tmp_path / "results" / "synth" / "TA" / "data"
    table = pd.read_csv(data / "clinical.csv")
    assert len(table) == 20 and int(table["mvi"].sum()) == 3
    assert (tmp_path / "results" / "synth" / "TA" / "truth" / "ceilings.json").exists()


TRAIT_NAMES = ("heterogeneity", "margin_irregularity", "anti_corona", "capsule", "vessel_contact")


def _render_with_trait(name: str, value: float):
    """The same patient (60 mm single lesion, demo scanner), one trait at ``value``, others 0."""
    from mtnet.seeds import rng
    from mtnet.synth import phantom
    from mtnet.synth.presets import FOV_MM, center_preset

    settings = {"preset": "demo", "center": "YPH", "role": "train", "n_patients": 4, "n_events": 1}
    row = draw_center_table(settings, SEED).iloc[0].to_dict()
    row.update(max_diameter_mm=60.0, lesion_number=1, location="right")
    for t in TRAIT_NAMES:
        row[f"trait_{t}"] = value if t == name else 0.0
    return phantom.render(row, center_preset(settings).scanner, FOV_MM["demo"], rng(SEED, "traits"))


def _trait_measure(name: str, ph) -> float:
    from mtnet.synth.phantom import LABELS

    tumor = ph.tumor > 0
    liver_hu = np.median(ph.image[ph.labels == LABELS["liver"]])
    if name == "heterogeneity":  # SD inside the tumor core
        return float(ph.image[ndimage.binary_erosion(tumor, iterations=2)].std())
    if name == "margin_irregularity":  # carved volume
        return float(tumor.sum())
    if name == "capsule":  # outermost tumor layer vs parenchyma
        return float(ph.image[tumor & ~ndimage.binary_erosion(tumor)].mean() - liver_hu)
    if name == "anti_corona":  # first voxels outside the tumor vs parenchyma
        shell = ndimage.binary_dilation(tumor, iterations=2) & ~tumor & (ph.liver > 0)
        return float(ph.image[shell].mean() - liver_hu)
    dist = ndimage.distance_transform_edt(~tumor, sampling=ph.spacing[::-1])
    return float(dist[ph.labels == LABELS["portal"]].min())  # gap to the nearest portal vessel


@pytest.mark.parametrize(
    "name,relation",
    [("heterogeneity", lambda lo, hi: hi > lo + 10), ("margin_irregularity", lambda lo, hi: hi < 0.95 * lo),
     ("capsule", lambda lo, hi: hi > lo + 10), ("anti_corona", lambda lo, hi: hi < lo - 10),
     ("vessel_contact", lambda lo, hi: hi < lo - 3 and hi <= 2.5)],
)
def test_image_traits_are_visible(name, relation):
    lo = _trait_measure(name, _render_with_trait(name, -2.0))
    hi = _trait_measure(name, _render_with_trait(name, 2.0))
    assert relation(lo, hi), (name, lo, hi)

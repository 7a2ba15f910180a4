"""The applet's door (mtnet.app without the workflow): uploads judged by content, zips that
cannot escape or explode, factors validated by ingestion's rules, model folders checked,
and the ComBat refusal for a single new patient. Model folders here are fitted for real by
the families' registry entry points on generated tables (seconds)."""

from __future__ import annotations

import gzip
import hashlib
import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import REPO
from mtnet.app import inputs as ins
from mtnet.app.pipeline import check_harmonisable
from mtnet.app.served import load_model
from mtnet.cli import main
from mtnet.config import section
from mtnet.errors import InputError
from mtnet.model import registry
from mtnet.model.identity import write_identity
from mtnet.model.splits import write_folds
from mtnet.stats.api import youden_threshold
from mtnet.tables import read_tsv
from stats_synthetic import clinical_table, write_table

STAGES = ("ingest", "liver", "tumor", "features")


# ------------------------------------------------------------------ files by content


def nifti(path, shape=(6, 5, 4)):
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros(shape, np.int16)), str(path))
    return path


def dicom(path):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path


def test_files_are_judged_by_content_not_by_name(tmp_path):
    assert ins.sniff(nifti(tmp_path / "a.nii.gz")) == "nifti-gz"
    assert ins.sniff(nifti(tmp_path / "b.nii")) == "nifti"
    assert ins.sniff(dicom(tmp_path / "c.dcm")) == "dicom"
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
        z.writestr("x.dcm", b"data")
    assert ins.sniff(tmp_path / "d.zip") == "zip"
    # names that lie: a NIfTI called .zip is a NIfTI; text called .nii.gz is nothing
    (tmp_path / "e.zip").write_bytes((tmp_path / "a.nii.gz").read_bytes())
    assert ins.sniff(tmp_path / "e.zip") == "nifti-gz"
    (tmp_path / "f.nii.gz").write_text("not an image")
    assert ins.sniff(tmp_path / "f.nii.gz") is None
    (tmp_path / "g.nii.gz").write_bytes(gzip.compress(b"\0" * 400))  # gzip, but no NIfTI header
    assert ins.sniff(tmp_path / "g.nii.gz") is None
    kind, problems = ins.check_ct(tmp_path / "f.nii.gz")
    assert problems and problems[0].field == "ct" and "by its content" in problems[0].problem
    assert ins.check_mask(tmp_path / "c.dcm") == ("dicom", [])
    assert ins.check_mask(tmp_path / "d.zip")[1][0].field == "tumor_mask"


# ------------------------------------------------------------------ zips


def test_a_zip_is_unpacked_under_names_of_its_own(tmp_path):
    src = tmp_path / "ok.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("DOE^JOHN/IM0001", b"a" * 100)
        z.writestr("DOE^JOHN/sub/IM0002", b"b" * 50)
        z.writestr("DOE^JOHN/", b"")  # a folder entry
    n = ins.extract_dicom_zip(src, tmp_path / "out", max_bytes=10_000)
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*"))
    assert n == 2 and files == ["000001.dcm", "000002.dcm"]
    assert (tmp_path / "out" / "000001.dcm").read_bytes() == b"a" * 100


@pytest.mark.parametrize("name, why", [("../evil.dcm", "'..'"), ("a/../../evil.dcm", "'..'"),
                                       ("/etc/evil.dcm", "absolute"), ("C:/evil.dcm", "absolute"),
                                       ("..\\evil.dcm", "'..'")])
def test_zip_entries_that_would_leave_the_folder_are_refused(tmp_path, name, why):
    src = tmp_path / "bad.zip"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("fine.dcm", b"x")
        z.writestr(name, b"x")
    with pytest.raises(ins.Refused, match=why) as err:
        ins.extract_dicom_zip(src, tmp_path / "out", max_bytes=10_000)
    assert err.value.problems[0].field == "ct"
    assert not (tmp_path / "evil.dcm").exists() and not (tmp_path / "out").exists()


def test_a_zip_with_a_link_is_refused(tmp_path):
    src = tmp_path / "link.zip"
    info = zipfile.ZipInfo("link.dcm")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(src, "w") as z:
        z.writestr(info, "/etc/passwd")
    with pytest.raises(ins.Refused, match="symbolic link"):
        ins.extract_dicom_zip(src, tmp_path / "out", max_bytes=10_000)


def test_a_zip_bomb_is_refused_by_its_declared_size(tmp_path):
    src = tmp_path / "bomb.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.dcm", b"\0" * (3 * 2**20))
    assert src.stat().st_size < 2**15  # 3 MiB of zeros in a few KiB
    with pytest.raises(ins.Refused, match=r"declares 3 MiB unpacked, more than the limit of 1 MiB"):
        ins.extract_dicom_zip(src, tmp_path / "out", max_bytes=2**20)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ins.Refused, match="not a readable zip"):
        ins.extract_dicom_zip(nifti(tmp_path / "x.nii.gz"), tmp_path / "out", max_bytes=2**20)


# ------------------------------------------------------------------ factors


def factors(**change):
    row = clinical_table("TA", 1, 3).iloc[0].to_dict()
    row.update(change)
    return row


NEEDED = ["age", "sex", "bclc", "max_diameter_mm", "lesion_number", "afp_ng_ml"]


def test_factors_are_validated_by_ingestions_rules():
    assert ins.check_factors(factors(), NEEDED) == []
    problems = ins.check_factors(factors(age=150, sex="X", lesion_number=1.5, bclc=None,
                                         afp_ng_ml="lots"), NEEDED)
    by = {p.field: p for p in problems}
    assert set(by) == {"age", "sex", "bclc", "lesion_number", "afp_ng_ml"}
    assert by["age"].problem == "value 150 out of range (0-120)"
    assert by["age"].fix == "give a number from 0 to 120"
    assert by["sex"].problem.startswith("unknown code 'X'") and by["sex"].fix == "give one of M, F"
    assert by["bclc"].problem == "missing" and by["bclc"].fix == "give one of 0, A, B, C, D"
    assert by["lesion_number"].problem == "not a whole number: 1.5"
    assert by["afp_ng_ml"].problem == "not a number: 'lots'"
    # a factor the model does not use may be absent, but not wrong
    assert ins.check_factors(factors(capsule=None), NEEDED) == []
    assert [p.field for p in ins.check_factors(factors(capsule=7), NEEDED)] == ["capsule"]
    assert ins.check_patient_id("TX-0003") == [] and ins.check_patient_id("../x")[0].field == "patient_id"


def test_the_clinical_input_is_a_json_object_or_a_one_row_csv(tmp_path):
    row = factors(patient_id="TA-0001")
    (tmp_path / "p.json").write_text(json.dumps({k: (None if pd.isna(v) else v) for k, v in row.items()},
                                                default=str))
    got = ins.read_clinical(tmp_path / "p.json")
    assert got["age"] == row["age"] and got["sex"] == row["sex"]
    pd.DataFrame([row]).to_csv(tmp_path / "p.csv", index=False)
    assert ins.read_clinical(tmp_path / "p.csv")["bclc"] == row["bclc"]
    pd.DataFrame([row, row]).to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(ins.Refused, match="has 2 rows") as err:
        ins.read_clinical(tmp_path / "two.csv")
    assert "--batch" in str(err.value)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ins.Refused, match="not valid JSON"):
        ins.read_clinical(tmp_path / "bad.json")


# ------------------------------------------------------------------ model folders


def train(tmp_path, model: str, tables: list[str], features=None) -> Path:
    """A model folder fitted by the registry's entry point, with its identity."""
    spec = registry.get(model)
    splits = tmp_path / "folds.tsv"
    write_folds(tables, splits, k=3, seed=1)
    root = tmp_path / "results" / "models" / model
    outputs = {"model": str(root / "model"), "summary": str(root / "summary.tsv"),
               "log": str(root / "training_log.tsv")}
    inputs = {"clinical": tables, "splits": str(splits)}
    settings = {"bootstrap": 0} if model == "Model-Clinical-LR" else {"harmonize": "combat"}
    if features:
        inputs["features"] = features
    spec.call("train", inputs=inputs, outputs=outputs, settings=settings, seed=1)
    write_identity(spec, outputs["model"], inputs, {k: section(k) for k in STAGES},
                   {"TA": {"source": "synthetic"}, "TB": {"source": "synthetic"}})
    return root


@pytest.fixture(scope="module")
def clinical_tables(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tables")
    return [write_table(clinical_table("TA", 60, 1, 0.25), tmp / "TA.tsv"),
            write_table(clinical_table("TB", 50, 2, 0.25), tmp / "TB.tsv")]


@pytest.fixture(scope="module")
def lr_folder(tmp_path_factory, clinical_tables):
    return train(tmp_path_factory.mktemp("lr"), "Model-Clinical-LR", clinical_tables)


def test_a_model_folder_gives_its_threshold_and_the_factors_it_needs(lr_folder):
    served = load_model(lr_folder)  # results/models/<model> is enough
    assert served.folder == lr_folder / "model" and served.name == "Model-Clinical-LR"
    oof = read_tsv(lr_folder / "model" / "oof.tsv")
    expected = youden_threshold(oof["mvi"], oof["risk"], engine="python").threshold
    assert served.threshold == pytest.approx(expected, abs=0)
    assert min(oof["risk"]) < served.threshold < max(oof["risk"])
    model = json.loads((lr_folder / "model" / "model.json").read_text())
    assert served.factors == list(dict.fromkeys(t["column"] for t in model["encoding"]["terms"]))
    assert "age" in served.factors and "bclc" in served.factors
    ident = served.describe()
    assert [c["center"] for c in ident["training_centers"]] == ["TA", "TB"]
    assert ident["synthetic"] is True and ident["liver_backend"] == "classical"
    assert served.combat_batches is None and served.h_score_median is None


def copy_folder(src: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(src, dest)
    return dest


def edit_identity(folder: Path, **change) -> None:
    path = folder / "model" / "identity.json"
    record = json.loads(path.read_text())
    record.update(change)
    path.write_text(json.dumps(record))


@pytest.mark.parametrize("change, message", [
    ({"format_version": 0}, "model folder format 0"),
    ({"model": "Model-Nonexistent"}, "which this mtnet does not implement"),
    ({"family": "radiomics"}, "fitted by family 'radiomics'"),
    ({"settings": {"ingest": {}}}, "lacks the settings of liver, tumor"),
])
def test_an_incompatible_model_folder_is_refused_in_one_line(lr_folder, tmp_path, change, message):
    folder = copy_folder(lr_folder, tmp_path / "m")
    edit_identity(folder, **change)
    with pytest.raises(InputError, match=message) as err:
        load_model(folder)
    assert "\n" not in str(err.value) and "fix:" in str(err.value)


def test_recorded_settings_this_schema_refuses_are_another_version(lr_folder, tmp_path):
    folder = copy_folder(lr_folder, tmp_path / "m")
    record = json.loads((folder / "model" / "identity.json").read_text())
    record["settings"]["tumor"]["crop_mode"] = "old"
    (folder / "model" / "identity.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match=r"recorded tumor settings do not fit this mtnet \(config: "
                       r"tumor.*unknown key 'crop_mode'.*retrain"):
        load_model(folder)


def test_a_folder_without_out_of_fold_risks_or_its_unet_is_refused(lr_folder, tmp_path):
    folder = copy_folder(lr_folder, tmp_path / "m")
    (folder / "model" / "oof.tsv").unlink()
    with pytest.raises(InputError, match="no out-of-fold risks"):
        load_model(folder)
    folder = copy_folder(lr_folder, tmp_path / "results" / "models" / "Model-Clinical-LR")
    record = json.loads((folder / "model" / "identity.json").read_text())
    record["settings"]["liver"]["default_backend"] = "unet"
    (folder / "model" / "identity.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match=r"liver UNet is not found.*--liver-model"):
        load_model(folder)
    unet = tmp_path / "results" / "liver" / "unet" / "model.pt"  # where a run keeps it
    unet.parent.mkdir(parents=True)
    unet.write_bytes(b"weights")
    assert load_model(folder).liver_model == unet


def test_mtnet_predict_refuses_with_one_line(lr_folder, tmp_path, capsys):
    folder = copy_folder(lr_folder, tmp_path / "m")
    edit_identity(folder, format_version=99)
    assert main(["predict", "--model", str(folder), "--ct", "x", "--tumor-mask", "y",
                 "--clinical", "z"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "model folder format 99" in err and "\n" not in err
    assert main(["predict", "--model", str(lr_folder), "--ct", "x"]) == 2
    assert "--tumor-mask, --clinical missing" in capsys.readouterr().err
    (tmp_path / "p.json").write_text(json.dumps({**{k: v for k, v in factors().items() if not pd.isna(v)},
                                                 "age": 150}, default=str))
    nifti(tmp_path / "ct.nii.gz")
    nifti(tmp_path / "mask.nii.gz")
    assert main(["predict", "--model", str(lr_folder), "--ct", str(tmp_path / "ct.nii.gz"),
                 "--tumor-mask", str(tmp_path / "mask.nii.gz"), "--clinical", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: age: value 150 out of range (0-120) (fix: give a number from 0 to 120)"
    assert main(["predict", "--model", str(lr_folder), "--batch", "t.csv", "--center", "../x"]) == 2
    assert "--center '../x': not a center name" in capsys.readouterr().err


def test_the_text_output_names_every_quantity(lr_folder, capsys):
    from mtnet.app.cli import print_one
    from mtnet.app.pipeline import Result

    served = load_model(lr_folder)
    high = Result("TX-0001", served.name, 0.61234, "high", served.threshold, ci_low=0.4, ci_high=0.8,
                  picture="TX-0001.png", warnings=["liver volume 600 mL is outside the expected range"])
    print_one(served, high)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("model         Model-Clinical-LR (trained on TA, TB; synthetic training data; commit ")
    assert out[2] == "risk          0.6123"
    assert out[3] == f"risk group    high (risk > {served.threshold:.4f}, Youden threshold of the training centers' out-of-fold risks)"
    assert out[4] == "H-score       not provided by this model"
    assert out[5] == "95% interval  0.4000 to 0.8000"
    assert out[-1] == "warning       liver volume 600 mL is outside the expected range"
    print_one(served, Result("TX-0002", served.name, 0.01, "low", served.threshold, h_score=0.3,
                             h_score_group="low", h_score_median=0.7))
    out = capsys.readouterr().out
    assert f"low (risk <= {served.threshold:.4f}" in out and "not provided by this model" in out
    assert "H-score       0.3000 (low: training median 0.7000)" in out


# ------------------------------------------------------------------ a radiomics model


def long_features(table: pd.DataFrame, offset: float, seed: int, path: Path) -> str:
    """A features table (one row per patient and region) whose f0 follows MVI, each center
    with its own offset (a scanner's), and the sidecar the features stage writes beside it."""
    gen = np.random.default_rng(seed)
    rows = []
    for pid, mvi in zip(table["patient_id"], table["mvi"]):
        for region in ("lesion", "ring"):
            values = gen.normal(size=6) + offset
            values[0] += 1.5 * mvi
            rows.append({"patient_id": pid, "region": region, "reason": "",
                         **{f"f{j}": v for j, v in enumerate(values)}})
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    params = REPO / "config" / "radiomics.yaml"
    (path.parent / "radiomics.json").write_text(json.dumps({
        "params_path": str(params), "params_sha256": hashlib.sha256(params.read_bytes()).hexdigest()}))
    return str(path)


def test_one_new_patient_cannot_be_harmonised_by_combat(tmp_path, clinical_tables):
    feats = [long_features(pd.read_csv(t, sep="\t", dtype={"patient_id": str}), off, i,
                           tmp_path / "features" / c / "radiomics.tsv")
             for i, (t, c, off) in enumerate(zip(clinical_tables, ("TA", "TB"), (0.0, 2.0)))]
    folder = train(tmp_path, "Model-Radiomics", clinical_tables, feats)
    served = load_model(folder)
    identity = json.loads((folder / "model" / "identity.json").read_text())
    assert identity["radiomics_params"]["text"] == (REPO / "config" / "radiomics.yaml").read_text()
    assert served.radiomics_params == identity["radiomics_params"]["text"]
    assert served.factors == [] and served.combat_batches == ["TA", "TB"]
    with pytest.raises(ins.Refused, match="ComBat.*one patient is not enough") as err:
        check_harmonisable(served, "NEW", 1)
    assert "--batch" in err.value.problems[0].fix and "(TA, TB)" in err.value.problems[0].fix
    check_harmonisable(served, "NEW", 2)  # a batch of one center is harmonised from itself
    check_harmonisable(served, "TB", 1)   # a training center's patient uses its parameters
    assert main(["serve", "--model", str(folder)]) == 2  # the form scores one patient at a time
    # an edited parameters file is not what the features were extracted with
    sidecar = Path(feats[0]).parent / "radiomics.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "params_sha256": "0" * 64}))
    with pytest.raises(InputError, match="different radiomics parameters"):
        write_identity(registry.get("Model-Radiomics"), folder / "model",
                       {"clinical": clinical_tables, "features": feats},
                       {k: section(k) for k in STAGES}, {})


# ------------------------------------------------------------------ the web form's door


UPLOAD_MB = 2


@pytest.fixture(scope="module")
def web(lr_folder, tmp_path_factory):
    """The FastAPI app of a real model folder under uvicorn, in a thread."""
    import socket
    import threading
    import time

    import requests
    import uvicorn

    from mtnet.app.web import AppSettings, create_app

    tmp = tmp_path_factory.mktemp("web")
    (tmp / "requests").mkdir()
    settings = AppSettings(max_upload_bytes=UPLOAD_MB * 2**20, max_unzipped_bytes=UPLOAD_MB * 2**20,
                           queue=1, tmp_dir=tmp / "requests")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(load_model(lr_folder), settings), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.get(url + "/health", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    yield {"url": url, "requests": tmp / "requests"}
    server.should_exit = True
    thread.join(timeout=10)


def ct_and_mask(tmp_path):
    """A small CT (HU) and a tumor mask on its grid."""
    ct = np.full((30, 40, 40), -1000, np.int16)
    ct[5:25, 8:32, 8:32] = 60
    mask = np.zeros(ct.shape, np.uint8)
    mask[12:18, 15:21, 15:21] = 1
    img, msk = sitk.GetImageFromArray(ct), sitk.GetImageFromArray(mask)
    for im in (img, msk):
        im.SetSpacing((2.0, 2.0, 2.0))
    sitk.WriteImage(img, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(msk, str(tmp_path / "mask.nii.gz"))
    msk.SetSpacing((3.0, 3.0, 3.0))
    sitk.WriteImage(msk, str(tmp_path / "moved.nii.gz"))
    four_d = sitk.JoinSeries([img, img])
    sitk.WriteImage(four_d, str(tmp_path / "4d.nii.gz"))
    return {k: (tmp_path / f"{k}.nii.gz").read_bytes() for k in ("ct", "mask", "moved", "4d")}


def zipped(entries: dict) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def post(web, fields, ct: bytes, mask: bytes):
    import requests

    return requests.post(web["url"] + "/predict", data=fields, timeout=120,
                         files={"ct": ("ct.bin", ct), "tumor_mask": ("mask.bin", mask)})


def field_error(html: str, name: str) -> str:
    import html as html_module
    import re

    match = re.search(rf'<span class="error" id="error-{name}">([^<]*)</span>', html)
    assert match, f"no error next to {name}"
    return html_module.unescape(match.group(1))


def test_the_form_lists_the_factors_with_their_allowed_values(web, lr_folder):
    import requests

    r = requests.get(web["url"] + "/", timeout=10)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert "script" not in r.text.lower() and 'enctype="multipart/form-data"' in r.text
    for column in load_model(lr_folder).factors:
        assert f'name="{column}"' in r.text
    assert '<option value="B">B</option>' in r.text and 'min="0" max="120"' in r.text
    assert 'id="identity-centers">TA (60 patients' in r.text and 'id="synthetic"' in r.text


def test_bad_uploads_are_refused_next_to_their_field_and_the_server_keeps_serving(web, tmp_path):
    import requests

    files = ct_and_mask(tmp_path)
    fields = {k: "" if pd.isna(v) else str(v) for k, v in factors().items()
              if k not in ("patient_id", "center")}
    cases = [
        ("not a zip", fields, b"%PDF-1.4 not a CT " * 100, files["mask"], "ct",
         "neither a zip of DICOM files nor a NIfTI file"),
        ("traversal", fields, zipped({"ok.dcm": b"x", "../../evil.dcm": b"x"}), files["mask"], "ct",
         "a '..' component"),
        ("zip bomb", fields, zipped({"zeros.dcm": b"\0" * ((UPLOAD_MB + 1) * 2**20)}), files["mask"],
         "ct", f"declares {UPLOAD_MB + 1} MiB unpacked, more than the limit of {UPLOAD_MB} MiB"),
        ("4D NIfTI", fields, files["4d"], files["mask"], "ct", "expected a 3D single-channel image, got 4D"),
        ("mask on another grid", fields, files["ct"], files["moved"], "tumor_mask",
         "tumor mask is not on the image grid (spacing"),
        ("mask not an image", fields, files["ct"], b"\0" * 500, "tumor_mask", "neither a DICOM-SEG nor a NIfTI"),
        ("age 150", {**fields, "age": "150"}, files["ct"], files["mask"], "age",
         "value 150 out of range (0-120) (give a number from 0 to 120)"),
        ("missing field", {k: v for k, v in fields.items() if k != "sex"}, files["ct"], files["mask"],
         "sex", "missing (give one of M, F)"),
    ]
    for what, f, ct, mask, field, message in cases:
        r = post(web, f, ct, mask)
        assert r.status_code == 422, what
        assert message in field_error(r.text, field), (what, field_error(r.text, field))
        assert 'id="patient-form"' in r.text and "evil" not in r.text
    r = post(web, fields, b"", files["mask"])
    assert r.status_code == 422 and field_error(r.text, "ct").startswith("missing")
    # larger than the upload limit: refused, the body drained so that the answer is read
    r = post(web, fields, np.random.default_rng(0).bytes((UPLOAD_MB + 1) * 2**20), files["mask"])
    assert r.status_code == 413 and f"limit of {UPLOAD_MB} MiB" in r.text
    r = requests.post(web["url"] + "/predict", data="age=50", timeout=10,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and "not a multipart form" in r.text
    assert requests.get(web["url"] + "/health", timeout=5).json() == {
        "status": "ok", "model": "Model-Clinical-LR", "taken": 0, "capacity": 2}
    assert list(web["requests"].iterdir()) == []  # every request's folder removed
    assert not (tmp_path.parent / "evil.dcm").exists()


def test_the_queue_lets_one_score_and_some_wait():
    from mtnet.app.web import ScoringQueue

    q = ScoringQueue(waiting=2)
    assert [q.enter() for _ in range(4)] == [True, True, True, False]
    q.leave()
    assert q.enter() and not q.enter() and q.taken == 3

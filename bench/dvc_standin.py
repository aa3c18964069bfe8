"""Turns a copy of a real DVC project into a runnable stand-in with the same graph (issue 15).

Usage: PYTHON bench/dvc_standin.py PROJECT STANDIN_SH MANIFEST
  PROJECT    a copy of the project (its dvc.yaml files and params files), `dvc init` done;
             changed in place.
  STANDIN_SH the shell script each command is replaced by (bench/dvc_standin.sh, absolute path).
  MANIFEST   written here: which outputs are folders and which files must appear inside them.

Run it with the Python of DVC's venv: it needs DVC 3 (to resolve `foreach`/`matrix`/`vars`
exactly as DVC does) and PyYAML.

What it changes, and nothing else:
  * each stage's `cmd` value (the lines of that key only; every other byte of the dvc.yaml files
    stays) becomes `sh STANDIN_SH MANIFEST 'out'... -- 'dep'...` with the stage's own, still
    templated, output and dep paths, so `${item}` and `${key}` are filled in as in the original;
  * deps that no stage produces (raw data, code) and the outputs of frozen stages are created as
    small files (a folder with one file when the path has no extension or ends with `/`);
  * params a stage names that its params file lacks are added with the value 1 (YAML and JSON
    files; a missing params file is created).
Prints `stages=N` (the stages after expansion, as DVC counts them).
"""

import json
import os
import sys

import yaml

project, standin_sh, manifest_path = sys.argv[1:4]
project = os.path.abspath(project)


def raw_paths(entries):
    """The path strings of a `deps`/`outs`/`metrics`/`plots` list, as written (templated)."""
    if not isinstance(entries, list):
        return []
    out = []
    for e in entries:
        if isinstance(e, str):
            out.append(e)
        elif isinstance(e, dict) and len(e) == 1:
            out.append(str(next(iter(e))))
    return out


def quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def standin_cmd(body):
    outs = [p for f in ("outs", "metrics", "plots") for p in raw_paths(body.get(f))]
    deps = raw_paths(body.get("deps"))
    words = ["sh", standin_sh, manifest_path] + [quote(o) for o in outs] + ["--"]
    return " ".join(words + [quote(d) for d in deps])


def value_end(lines, start, col):
    """The line after the value of the key at (start, col): the first later line that is not
    blank and not indented deeper than the key."""
    i = start + 1
    while i < len(lines):
        text = lines[i]
        stripped = text.lstrip(" ")
        if stripped.strip() and (len(text) - len(stripped)) <= col:
            break
        i += 1
    # Trailing blank lines belong to what follows.
    while i - 1 > start and not lines[i - 1].strip():
        i -= 1
    return i


def rewrite_cmds(path):
    text = open(path, encoding="utf-8").read()
    root = yaml.compose(text)
    if root is None or not isinstance(root, yaml.MappingNode):
        return
    plain = yaml.safe_load(text) or {}
    edits = []  # (line, col, new cmd)
    for k, v in root.value:
        if k.value != "stages" or not isinstance(v, yaml.MappingNode):
            continue
        for sk, sv in v.value:
            if not isinstance(sv, yaml.MappingNode):
                continue
            stage = plain["stages"][sk.value]
            body_node, body = sv, stage
            if "do" in stage:
                body = stage["do"]
                body_node = next(n for kk, n in sv.value if kk.value == "do")
            for ck, _ in body_node.value:
                if ck.value == "cmd":
                    edits.append((ck.start_mark.line, ck.start_mark.column, standin_cmd(body)))
    lines = text.split("\n")
    for line, col, cmd in sorted(edits, reverse=True):
        end = value_end(lines, line, col)
        lines[line:end] = [" " * col + "cmd: " + json.dumps(cmd)]
    new_text = "\n".join(lines)
    # The stand-in must differ from the original in the commands only.
    if without_cmds(yaml.safe_load(new_text)) != without_cmds(plain):
        sys.exit(f"{path}: replacing the commands changed more than the commands")
    open(path, "w", encoding="utf-8").write(new_text)


def without_cmds(doc):
    for stage in (doc.get("stages") or {}).values():
        if isinstance(stage, dict):
            stage.pop("cmd", None)
            if isinstance(stage.get("do"), dict):
                stage["do"].pop("cmd", None)
    return doc


def has_ext(path):
    return "." in os.path.basename(path.rstrip("/"))


def under(path, folder):
    return path != folder and path.startswith(folder.rstrip("/") + "/")


def set_key(doc, dotted):
    parts = dotted.split(".")
    node = doc
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node.setdefault(parts[-1], 1)


def has_key(doc, dotted):
    node = doc
    for p in dotted.split("."):
        if not isinstance(node, dict) or p not in node:
            return False
        node = node[p]
    return True


def fix_params(path, keys):
    """Adds the keys a stage names to its params file (YAML or JSON), creating the file."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".yaml", ".yml", ".json", ""):
        return
    exists = os.path.exists(path)
    text = open(path, encoding="utf-8").read() if exists else ""
    doc = (json.loads(text) if ext == ".json" else yaml.safe_load(text)) if text.strip() else {}
    missing = [k for k in keys if not has_key(doc, k)]
    if exists and not missing:
        return
    for k in missing:
        set_key(doc, k)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        if ext == ".json":
            json.dump(doc, f, indent=2)
        else:
            yaml.safe_dump(doc, f, sort_keys=False)


def main():
    for folder, dirs, files in os.walk(project):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if "dvc.yaml" in files:
            rewrite_cmds(os.path.join(folder, "dvc.yaml"))

    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    repo = Repo(project)
    stages = [s for s in repo.index.stages if s.cmd]
    rel = lambda p: os.path.relpath(p, project)
    produced = {rel(o.fs_path): s for s in stages for o in s.outs if not s.frozen}
    frozen_outs = [rel(o.fs_path) for s in stages if s.frozen for o in s.outs]
    deps, params = [], {}
    for s in stages:
        for d in s.deps:
            if "://" in d.def_path:
                continue
            if isinstance(d, ParamsDependency):
                params.setdefault(d.fs_path, set()).update(d.params or [])
            else:
                deps.append(rel(d.fs_path) + ("/" if d.def_path.endswith("/") else ""))
    outs = list(produced)
    # Folders: outputs written with `/`, without an extension, or with deps inside them.
    folders = {o for o in outs if not has_ext(o) or any(under(d, o) for d in deps)}
    inner = sorted({(o, d) for o in folders for d in deps if under(d.rstrip("/"), o)})
    with open(manifest_path, "w", encoding="utf-8") as m:
        for o in sorted(folders):
            m.write(f"D\t{o}\n")
        for o, d in inner:
            m.write(f"I\t{o}\t{d.rstrip('/')}\n")
    # Sources: deps produced by no stage (nor inside a produced folder), and frozen outputs.
    for d in sorted(set(deps) | set(frozen_outs)):
        p = d.rstrip("/")
        # Inside a produced folder, or a folder holding produced files: made by the stages.
        if p in produced or any(under(p, o) or under(o, p) for o in produced):
            continue
        full = os.path.join(project, p)
        if os.path.exists(full):
            continue
        if d.endswith("/") or not has_ext(p):
            os.makedirs(full, exist_ok=True)
            full = os.path.join(full, "part.txt")
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(f"stand-in source {p}\n")
    for path, keys in params.items():
        fix_params(path, sorted(keys))
    print(f"stages={len(repo.index.stages)}")


main()

#!/usr/bin/env python3
"""Signed S3 requests against the SeaweedFS started by seaweedfs.sh (uses boto3).

    python s3_check.py ready   # signed ListBuckets; creates $S3_BUCKET if missing
    python s3_check.py check   # put/get/list/delete and conditional writes; exit 1 on surprise

Reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, S3_BUCKET from the
environment (STATE_DIR/env).
"""
import os
import sys
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            connect_timeout=2,
            read_timeout=10,
        ),
    )


def status_of(err):
    return err.response.get("ResponseMetadata", {}).get("HTTPStatusCode"), err.response.get(
        "Error", {}
    ).get("Code")


def ready():
    s3 = client()
    bucket = os.environ["S3_BUCKET"]
    names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    if bucket not in names:
        s3.create_bucket(Bucket=bucket)
    s3.head_bucket(Bucket=bucket)
    print("ready")


def check():
    s3 = client()
    bucket = os.environ["S3_BUCKET"]
    sent = []
    # Record the conditional headers actually sent, to be sure the test is real.
    s3.meta.events.register(
        "before-send.s3.PutObject",
        lambda request, **_: sent.append(
            {k: v for k, v in request.headers.items() if k.lower() in ("if-none-match", "if-match")}
        ),
    )
    fails = []
    prefix = f"check-{uuid.uuid4().hex[:8]}/"

    def expect(label, ok, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {label}{': ' + detail if detail else ''}")
        if not ok:
            fails.append(label)

    # Plain put / get / list.
    k1 = prefix + "a.txt"
    r = s3.put_object(Bucket=bucket, Key=k1, Body=b"hello")
    etag1 = r["ETag"]
    body = s3.get_object(Bucket=bucket, Key=k1)["Body"].read()
    expect("put+get", body == b"hello", f"etag {etag1}")
    s3.put_object(Bucket=bucket, Key=prefix + "sub/b.txt", Body=b"bee")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))
    expect("list_objects_v2", keys == [k1, prefix + "sub/b.txt"], str(keys))
    cps = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/").get("CommonPrefixes", [])
    expect("list with delimiter", [c["Prefix"] for c in cps] == [prefix + "sub/"], str(cps))

    # Create-only: If-None-Match: * on a new key, then on the existing key.
    k2 = prefix + "create-only.txt"
    try:
        s3.put_object(Bucket=bucket, Key=k2, Body=b"first", IfNoneMatch="*")
        expect("If-None-Match:* on new key -> 200", True, f"headers sent {sent[-1]}")
    except ClientError as e:
        expect("If-None-Match:* on new key -> 200", False, str(status_of(e)))
    try:
        s3.put_object(Bucket=bucket, Key=k2, Body=b"second", IfNoneMatch="*")
        now = s3.get_object(Bucket=bucket, Key=k2)["Body"].read()
        expect("If-None-Match:* on existing key -> 412", False, f"accepted (200); content now {now!r}")
    except ClientError as e:
        st, code = status_of(e)
        now = s3.get_object(Bucket=bucket, Key=k2)["Body"].read()
        expect("If-None-Match:* on existing key -> 412", st == 412, f"HTTP {st} {code}; content still {now!r}")

    # Compare-and-swap: If-Match with the current / a stale ETag (object_store PutMode::Update).
    cur = s3.head_object(Bucket=bucket, Key=k2)["ETag"]
    try:
        s3.put_object(Bucket=bucket, Key=k2, Body=b"third", IfMatch=cur)
        expect("If-Match:<current etag> -> 200", True)
    except ClientError as e:
        expect("If-Match:<current etag> -> 200", False, str(status_of(e)))
    try:
        s3.put_object(Bucket=bucket, Key=k2, Body=b"fourth", IfMatch=cur)
        expect("If-Match:<stale etag> -> 412", False, "accepted (200)")
    except ClientError as e:
        st, code = status_of(e)
        expect("If-Match:<stale etag> -> 412", st == 412, f"HTTP {st} {code}")

    # Conditional GET.
    try:
        s3.get_object(Bucket=bucket, Key=k1, IfNoneMatch=etag1)
        expect("GET If-None-Match:<etag> -> 304", False, "got 200")
    except ClientError as e:
        st, code = status_of(e)
        expect("GET If-None-Match:<etag> -> 304", st == 304, f"HTTP {st} {code}")

    # Missing key.
    try:
        s3.get_object(Bucket=bucket, Key=prefix + "missing")
        expect("GET missing -> 404", False, "got 200")
    except ClientError as e:
        st, code = status_of(e)
        expect("GET missing -> 404", st == 404, f"HTTP {st} {code}")

    # Clean up.
    for k in [k1, prefix + "sub/b.txt", k2]:
        s3.delete_object(Bucket=bucket, Key=k)
    left = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0)
    expect("delete", left == 0, f"{left} left")
    print(f"{'all checks passed' if not fails else 'FAILED: ' + ', '.join(fails)}")
    return 1 if fails else 0


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "check"
    if what == "ready":
        ready()
    elif what == "check":
        sys.exit(check())
    else:
        sys.exit(f"usage: {sys.argv[0]} ready|check")

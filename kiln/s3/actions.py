"""The supported S3 actions: exactly the keys of ACTIONS. Each maps to its handler."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import Handler
from kiln.s3 import buckets, multipart, objects

ACTIONS: Mapping[str, Handler] = {
    "CreateBucket": buckets.create_bucket,
    "ListBuckets": buckets.list_buckets,
    "HeadBucket": buckets.head_bucket,
    "GetBucketLocation": buckets.get_bucket_location,
    "DeleteBucket": buckets.delete_bucket,
    "PutObject": objects.put_object,
    "GetObject": objects.get_object,
    "HeadObject": objects.head_object,
    "DeleteObject": objects.delete_object,
    "DeleteObjects": objects.delete_objects,
    "ListObjectsV2": objects.list_objects_v2,
    "ListObjects": objects.list_objects,
    "CreateMultipartUpload": multipart.create_multipart_upload,
    "UploadPart": multipart.upload_part,
    "CompleteMultipartUpload": multipart.complete_multipart_upload,
    "AbortMultipartUpload": multipart.abort_multipart_upload,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_multipart_uploads,
}

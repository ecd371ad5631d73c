"""One exception for every user-facing failure, and the table of error codes (AWS spellings).

Rules raise ``KilnError(errors.X, "message")``; it is protocol-neutral. Each protocol in
``kiln/aws`` renders it in its service's spelling (EC2's ``<Response><Errors>`` XML, the Query
``<ErrorResponse>``, JSON's ``__type``), after the service's own table has renamed the codes it
spells differently (kiln/aws/edge.py ``Service.spellings``). The CLI prints ``error: message`` on
one line and exits non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    http_status: int = 400


class KilnError(Exception):
    """A failure a user caused or can act on. ``code`` is an :class:`ErrorCode` constant."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[type[KilnError], tuple[ErrorCode, str]]:  # crosses process pools
        return (KilnError, (self.code, self.message))


# --- EC2 codes (AWS spellings) -------------------------------------------------------------
AuthFailure = ErrorCode("AuthFailure", 401)
UnauthorizedOperation = ErrorCode("UnauthorizedOperation", 403)
DryRunOperation = ErrorCode("DryRunOperation", 412)
InvalidAction = ErrorCode("InvalidAction", 400)
InvalidParameterValue = ErrorCode("InvalidParameterValue", 400)
InvalidParameter = ErrorCode("InvalidParameter", 400)
InvalidParameterCombination = ErrorCode("InvalidParameterCombination", 400)
UnknownParameter = ErrorCode("UnknownParameter", 400)
MissingParameter = ErrorCode("MissingParameter", 400)
InvalidFilter = ErrorCode("InvalidFilter", 400)
InvalidRequest = ErrorCode("InvalidRequest", 400)
InvalidPaginationToken = ErrorCode("InvalidPaginationToken", 400)
IncorrectState = ErrorCode("IncorrectState", 400)
InternalError = ErrorCode("InternalError", 500)
InvalidAMIIDMalformed = ErrorCode("InvalidAMIID.Malformed", 400)
InvalidAMIIDNotFound = ErrorCode("InvalidAMIID.NotFound", 400)
InvalidAMIIDUnavailable = ErrorCode("InvalidAMIID.Unavailable", 400)
InvalidAMINameDuplicate = ErrorCode("InvalidAMIName.Duplicate", 400)
InvalidAMINameMalformed = ErrorCode("InvalidAMIName.Malformed", 400)
InvalidSnapshotNotFound = ErrorCode("InvalidSnapshot.NotFound", 400)
InvalidSnapshotMalformed = ErrorCode("InvalidSnapshot.Malformed", 400)
InvalidSnapshotInUse = ErrorCode("InvalidSnapshot.InUse", 400)
InvalidVolumeNotFound = ErrorCode("InvalidVolume.NotFound", 400)
InvalidVolumeMalformed = ErrorCode("InvalidVolume.Malformed", 400)
InvalidKeyPairNotFound = ErrorCode("InvalidKeyPair.NotFound", 400)
InvalidKeyPairDuplicate = ErrorCode("InvalidKeyPair.Duplicate", 400)
InvalidKeyFormat = ErrorCode("InvalidKey.Format", 400)
InvalidInstanceIDMalformed = ErrorCode("InvalidInstanceID.Malformed", 400)
InvalidInstanceIDNotFound = ErrorCode("InvalidInstanceID.NotFound", 400)
IncorrectInstanceState = ErrorCode("IncorrectInstanceState", 400)
UnsupportedOperation = ErrorCode("UnsupportedOperation", 400)
InvalidInstanceType = ErrorCode("InvalidInstanceType", 400)
InsufficientInstanceCapacity = ErrorCode("InsufficientInstanceCapacity", 500)
InvalidRegion = ErrorCode("InvalidRegion", 400)
#: A real region this endpoint does not serve (kiln serve --regions), as AWS answers for a
#: region the account has not opted in to.
OptInRequired = ErrorCode("OptInRequired", 401)
InvalidZoneNotFound = ErrorCode("InvalidZone.NotFound", 400)
InvalidConversionTaskIdMalformed = ErrorCode("InvalidConversionTaskId.Malformed", 400)
InvalidConversionTaskIdNotFound = ErrorCode("InvalidConversionTaskId", 400)
InvalidExportTaskIDNotFound = ErrorCode("InvalidExportTaskID.NotFound", 400)
InvalidIDMalformed = ErrorCode("InvalidID", 400)
InvalidKmsKeyNotFound = ErrorCode("InvalidKmsKey.NotFound", 400)
# A bucket that is not the caller's, or does not exist: one answer for both (docs/security.md).
BucketAccessDenied = ErrorCode("AccessDenied", 403)

# --- Store / disk codes (used by the CLI and mapped onto EC2 codes at the edge) ----------
InvalidDiskImage = ErrorCode("InvalidParameterValue", 400)
UnsafeDiskImage = ErrorCode("InvalidParameterValue", 400)
StoreCorrupt = ErrorCode("InternalError", 500)
StoreFull = ErrorCode("InsufficientFreeSpace", 500)
DecryptionFailed = ErrorCode("KMS.AccessDeniedException", 400)

# --- Added by the image API (kiln/services/images*.py) --------------------------------------
InvalidBlockDeviceMapping = ErrorCode("InvalidBlockDeviceMapping", 400)
InvalidUserIDMalformed = ErrorCode("InvalidUserID.Malformed", 400)
InvalidAMIAttributeItemValue = ErrorCode("InvalidAMIAttributeItemValue", 400)
TagLimitExceeded = ErrorCode("TagLimitExceeded", 400)
# AuthFailure for a resource the caller may see but not change (EC2 answers it with HTTP 400,
# unlike a failed signature).
NotAuthorizedForResource = ErrorCode("AuthFailure", 400)

# --- Added by snapshots/volumes/tasks (kiln/services/snapshots/snapshots.py, volumes.py, tasks.py) ------
InvalidSnapshotIDMalformed = ErrorCode("InvalidSnapshotID.Malformed", 400)
InvalidVolumeIDMalformed = ErrorCode("InvalidVolumeID.Malformed", 400)
VolumeInUse = ErrorCode("VolumeInUse", 400)
InvalidVolumeZoneMismatch = ErrorCode("InvalidVolume.ZoneMismatch", 400)

# --- Added by instances (kiln/services/instances/run_instances.py, instance_actions.py) ----------------------
OperationNotPermitted = ErrorCode("OperationNotPermitted", 400)
InstanceLimitExceeded = ErrorCode("InstanceLimitExceeded", 400)
# Operator quotas (kiln/services/accounts/quotas.py; docs/quotas.md)
SnapshotLimitExceeded = ErrorCode("SnapshotLimitExceeded", 400)
ResourceLimitExceeded = ErrorCode("ResourceLimitExceeded", 400)
InvalidInstanceAttributeValue = ErrorCode("InvalidInstanceAttributeValue", 400)

# --- KMS (kiln/services/keys/kms_keys.py, kiln/services/keys/kms_state.py) --------------------------------
#: EC2's answer when an encrypted snapshot, volume or launch needs a key that is not Enabled
#: (the code of the state reason EC2 gives an instance it cannot launch, docs/kms.md).
InvalidKMSKeyInvalidState = ErrorCode("InvalidKMSKey.InvalidState", 400)
KmsNotFound = ErrorCode("NotFoundException", 400)
KmsInvalidGrantId = ErrorCode("InvalidGrantIdException", 400)
KmsInvalidState = ErrorCode("KMSInvalidStateException", 400)
KmsAlreadyExists = ErrorCode("AlreadyExistsException", 400)
KmsInvalidAliasName = ErrorCode("InvalidAliasNameException", 400)
KmsInvalidArn = ErrorCode("InvalidArnException", 400)
KmsInvalidMarker = ErrorCode("InvalidMarkerException", 400)
KmsTagException = ErrorCode("TagException", 400)
KmsUnsupportedOperation = ErrorCode("UnsupportedOperationException", 400)
# KMS grants (kiln/services/keys/kms_grants.py)
KmsInvalidGrantToken = ErrorCode("InvalidGrantTokenException", 400)
KmsDryRun = ErrorCode("DryRunOperationException", 412)
KmsAccessDenied = ErrorCode("AccessDeniedException", 400)

# --- The JSON protocols' own codes (kiln/aws/json.py) -------------------------------------------
UnknownOperation = ErrorCode("UnknownOperationException", 400)
SerializationException = ErrorCode("SerializationException", 400)
ValidationException = ErrorCode("ValidationException", 400)
UnrecognizedClient = ErrorCode("UnrecognizedClientException", 400)
InternalFailure = ErrorCode("InternalFailure", 500)

# --- Image usage reports (kiln/services/images/usage_reports.py) -------------------------------
InvalidImageUsageReportIdNotFound = ErrorCode("InvalidImageUsageReportId.NotFound", 400)
InvalidImageUsageReportIdMalformed = ErrorCode("InvalidImageUsageReportId.Malformed", 400)

# --- Recycle Bin (kiln/rbin, kiln/services/recyclebin); the Reason each carries: kiln/rbin/service.py
RbinResourceNotFound = ErrorCode("ResourceNotFoundException", 404)
RbinConflict = ErrorCode("ConflictException", 409)
RbinQuotaExceeded = ErrorCode("ServiceQuotaExceededException", 402)
RbinInternalServer = ErrorCode("InternalServerException", 500)

# --- STS (kiln/sts) ----------------------------------------------------------------------------
InvalidClientTokenId = ErrorCode("InvalidClientTokenId", 403)

# --- The rest protocols (kiln/aws/rest_json.py, kiln/aws/rest_xml.py) -------------------------
#: rest-json: no operation has this method and path (or the service does not serve it).
UnknownRestOperation = ErrorCode("UnknownOperationException", 404)
#: S3: no operation has this method and path; a known operation Kiln does not serve.
MethodNotAllowed = ErrorCode("MethodNotAllowed", 405)
S3NotImplemented = ErrorCode("NotImplemented", 501)
MalformedXML = ErrorCode("MalformedXML", 400)
InvalidArgument = ErrorCode("InvalidArgument", 400)

# --- S3 (kiln/s3, kiln/services/buckets, the edge's streamed bodies kiln/aws/payload.py) -------
NoSuchBucket = ErrorCode("NoSuchBucket", 404)
NoSuchKey = ErrorCode("NoSuchKey", 404)
NoSuchUpload = ErrorCode("NoSuchUpload", 404)
BucketAlreadyExists = ErrorCode("BucketAlreadyExists", 409)
BucketAlreadyOwnedByYou = ErrorCode("BucketAlreadyOwnedByYou", 409)
BucketNotEmpty = ErrorCode("BucketNotEmpty", 409)
InvalidBucketName = ErrorCode("InvalidBucketName", 400)
KeyTooLong = ErrorCode("KeyTooLongError", 400)
InvalidLocationConstraint = ErrorCode("InvalidLocationConstraint", 400)
IllegalLocationConstraint = ErrorCode("IllegalLocationConstraintException", 400)
InvalidPart = ErrorCode("InvalidPart", 400)
InvalidPartOrder = ErrorCode("InvalidPartOrder", 400)
EntityTooSmall = ErrorCode("EntityTooSmall", 400)
EntityTooLarge = ErrorCode("EntityTooLarge", 400)
InvalidRange = ErrorCode("InvalidRange", 416)
PreconditionFailed = ErrorCode("PreconditionFailed", 412)
NotModified = ErrorCode("NotModified", 304)
BadDigest = ErrorCode("BadDigest", 400)
InvalidDigest = ErrorCode("InvalidDigest", 400)
ContentSHA256Mismatch = ErrorCode("XAmzContentSHA256Mismatch", 400)
IncompleteBody = ErrorCode("IncompleteBody", 400)
SignatureDoesNotMatch = ErrorCode("SignatureDoesNotMatch", 403)
S3InternalError = ErrorCode("InternalError", 500)

# --- Networks (kiln/services/networks, kiln/services/instances/placement.py) -------------------
InvalidVpcIDNotFound = ErrorCode("InvalidVpcID.NotFound", 400)
InvalidVpcRange = ErrorCode("InvalidVpc.Range", 400)
InvalidSubnetIDNotFound = ErrorCode("InvalidSubnetID.NotFound", 400)
InvalidSubnetRange = ErrorCode("InvalidSubnet.Range", 400)
InvalidSubnetConflict = ErrorCode("InvalidSubnet.Conflict", 400)
InvalidGroupNotFound = ErrorCode("InvalidGroup.NotFound", 400)
InvalidGroupDuplicate = ErrorCode("InvalidGroup.Duplicate", 400)
InvalidPermissionDuplicate = ErrorCode("InvalidPermission.Duplicate", 400)
InvalidPermissionNotFound = ErrorCode("InvalidPermission.NotFound", 400)
InvalidSecurityGroupRuleIdNotFound = ErrorCode("InvalidSecurityGroupRuleId.NotFound", 400)
DependencyViolation = ErrorCode("DependencyViolation", 400)
CannotDelete = ErrorCode("CannotDelete", 400)
VPCIdNotSpecified = ErrorCode("VPCIdNotSpecified", 400)
MissingInput = ErrorCode("MissingInput", 400)
InvalidIPAddressInUse = ErrorCode("InvalidIPAddress.InUse", 400)

# --- SSM Parameter Store (kiln/services/parameters, kiln/ssm) ---------------------------------
ParameterNotFound = ErrorCode("ParameterNotFound", 400)
ParameterVersionNotFound = ErrorCode("ParameterVersionNotFound", 400)
ParameterAlreadyExists = ErrorCode("ParameterAlreadyExists", 400)
HierarchyLevelLimitExceeded = ErrorCode("HierarchyLevelLimitExceededException", 400)
InvalidFilterKey = ErrorCode("InvalidFilterKey", 400)
InvalidFilterOption = ErrorCode("InvalidFilterOption", 400)
InvalidFilterValue = ErrorCode("InvalidFilterValue", 400)
InvalidNextToken = ErrorCode("InvalidNextToken", 400)
InvalidKeyId = ErrorCode("InvalidKeyId", 400)
InvalidAllowedPattern = ErrorCode("InvalidAllowedPatternException", 400)
ParameterPatternMismatch = ErrorCode("ParameterPatternMismatchException", 400)
#: SSM's answer to a PutParameter under a reserved prefix (/aws/, /kiln/).
SsmAccessDenied = ErrorCode("AccessDeniedException", 400)
SsmInternalServerError = ErrorCode("InternalServerError", 500)
TooManyUpdates = ErrorCode("TooManyUpdates", 400)

# --- Image Builder lifecycle policies (kiln/services/lifecycle; docs/lifecycle.md) -----------
ImagebuilderInvalidParameterValue = ErrorCode("InvalidParameterValueException", 400)
ImagebuilderInvalidRequest = ErrorCode("InvalidRequestException", 400)
ImagebuilderResourceNotFound = ErrorCode("ResourceNotFoundException", 404)
# The Image Builder API (kiln/imagebuilder, kiln/services/imagebuilder; docs/imagebuilder.md)
ImagebuilderResourceAlreadyExists = ErrorCode("ResourceAlreadyExistsException", 400)
ImagebuilderServiceException = ErrorCode("ServiceException", 500)

# --- Marketplace (kiln/services/marketplace/; docs/marketplace.md) ----------------------------
#: A product id or code no product has (the Marketplace Catalog API's spelling).
MarketplaceProductNotFound = ErrorCode("ResourceNotFoundException", 404)

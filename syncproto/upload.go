package syncproto

// Resumable photo uploads (PROTOCOL.md section 6a): tus 1.0 under
// UploadsPath. The headers and metadata keys are tus's; the values a
// fieldsync server accepts are checked by ValidPhotoType and ValidSHA256.
const (
	// UploadsPath is where uploads are created (POST) and live
	// (UploadsPath + id: HEAD, PATCH, DELETE).
	UploadsPath = "/v1/uploads/"
	// TusVersion is the tus protocol version, sent as Tus-Resumable.
	TusVersion = "1.0.0"
	// MediaOffsetOctetStream is the Content-Type of a PATCH's bytes.
	MediaOffsetOctetStream = "application/offset+octet-stream"

	HeaderTusResumable   = "Tus-Resumable"
	HeaderUploadLength   = "Upload-Length"
	HeaderUploadOffset   = "Upload-Offset"
	HeaderUploadMetadata = "Upload-Metadata"

	// Keys of Upload-Metadata at creation: the photo's lowercase hex
	// SHA-256 and its media type.
	UploadMetaSHA256      = "sha256"
	UploadMetaContentType = "content_type"
)

// ValidPhotoType reports whether a photo may have this media type.
func ValidPhotoType(mediaType string) bool {
	return mediaType == "image/jpeg" || mediaType == "image/png"
}

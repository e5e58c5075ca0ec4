package httpapi

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/syncproto"
)

// body returns the request body, gunzipped when Content-Encoding says gzip,
// cut at limit+1 bytes so a decoder sees at most that much.
func body(c echo.Context) (io.Reader, func(), error) {
	r := c.Request()
	switch strings.ToLower(strings.TrimSpace(r.Header.Get(echo.HeaderContentEncoding))) {
	case "", "identity":
		return r.Body, func() {}, nil
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, nil, syncproto.InvalidField("body", "the body is not valid gzip")
		}
		return zr, func() { zr.Close() }, nil
	}
	return nil, nil, syncproto.InvalidField("Content-Encoding", "Content-Encoding must be gzip or none")
}

// requestCodec is the codec of the request's Content-Type; JSON when absent.
func requestCodec(c echo.Context) (syncproto.Codec, error) {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct == "" {
		return syncproto.JSON, nil
	}
	codec := syncproto.CodecFor(ct)
	if codec == nil {
		return nil, syncproto.InvalidField("Content-Type", "Content-Type must be application/json or application/msgpack")
	}
	return codec, nil
}

// decode reads the body into v with the request's codec and limit.
func (s *Server) decode(c echo.Context, v any) error {
	codec, err := requestCodec(c)
	if err != nil {
		return err
	}
	r, done, err := body(c)
	if err != nil {
		return err
	}
	defer done()
	if err := syncproto.Decode(codec, r, s.cfg.BodyLimit, v); err != nil {
		if syncproto.AsError(err) == nil {
			return badBody(err)
		}
		return err
	}
	return nil
}

// badBody turns a read error (a broken gzip stream, a cut connection) into
// the client's error.
func badBody(err error) error {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return syncproto.Errorf(syncproto.CodePayloadTooLarge, "the body is larger than %d bytes", maxErr.Limit)
	}
	return syncproto.InvalidField("body", "the body could not be read: %s", strings.TrimPrefix(err.Error(), "read body: "))
}

// respond encodes v in the negotiated codec.
func respond(c echo.Context, status int, v any) error {
	codec := syncproto.Negotiate(c.Request().Header.Get(echo.HeaderAccept), c.Request().Header.Get(echo.HeaderContentType))
	data, err := codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	return c.Blob(status, codec.MediaType(), data)
}

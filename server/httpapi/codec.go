package httpapi

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

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
// Responses over 1 KiB are gzipped for clients that accept it
// (PROTOCOL.md section 1). The body is already in memory, so it is
// compressed in one call at the fastest level, with pooled writers: a
// streaming middleware costs more than the compression of a small answer.
func respond(c echo.Context, status int, v any) error {
	return respondAt(c, status, v, gzip.BestSpeed)
}

// slowLinkBudget: a pull whose byte budget (max_bytes) is at most this
// comes from a client that measured a slow link (the SDK sizes pages to
// take 10 s or more: 1 MiB of changes, about 200 KB gzipped, is about
// 160 kbit/s). Its answer is gzipped at DefaultCompression, which costs
// the server some 20 ms for a page of 1 MiB and the link a fifth fewer
// bytes than BestSpeed: seconds at 2G rates.
const slowLinkBudget = 1 << 20

// respondAt is respond with the gzip level given: gzip.BestSpeed or
// gzip.DefaultCompression.
func respondAt(c echo.Context, status int, v any, level int) error {
	e, err := encodeAt(c, v, level)
	if err != nil {
		return err
	}
	return e.send(c, status)
}

// encoded is an answer's body in the negotiated codec, gzipped or not.
type encoded struct {
	body      []byte
	mediaType string
	gzipped   bool
}

// encodeAt encodes v as respondAt sends it, without sending it: a pull
// builds its page in a slot and gives it back before the bytes go out
// (pages.go).
func encodeAt(c echo.Context, v any, level int) (encoded, error) {
	codec := syncproto.Negotiate(c.Request().Header.Get(echo.HeaderAccept), c.Request().Header.Get(echo.HeaderContentType))
	data, err := codec.Marshal(v)
	if err != nil {
		return encoded{}, fmt.Errorf("encode response: %w", err)
	}
	e := encoded{body: data, mediaType: codec.MediaType()}
	if len(data) > gzipMinLength && acceptsGzip(c.Request().Header.Get(echo.HeaderAcceptEncoding)) {
		if e.body, err = gzipBytes(data, level); err != nil {
			return encoded{}, err
		}
		e.gzipped = true
	}
	return e, nil
}

// send writes the encoded answer with status.
func (e encoded) send(c echo.Context, status int) error {
	h := c.Response().Header()
	h.Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
	if e.gzipped {
		h.Set(echo.HeaderContentEncoding, "gzip")
	}
	return c.Blob(status, e.mediaType, e.body)
}

const gzipMinLength = 1024

// gzipWriters are pools of writers by level (BestSpeed, DefaultCompression).
var gzipWriters = map[int]*sync.Pool{gzip.BestSpeed: gzipPool(gzip.BestSpeed), gzip.DefaultCompression: gzipPool(gzip.DefaultCompression)}

func gzipPool(level int) *sync.Pool {
	return &sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(nil, level)
		return w
	}}
}

func gzipBytes(data []byte, level int) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(data) / 3)
	pool := gzipWriters[level]
	zw := pool.Get().(*gzip.Writer)
	defer pool.Put(zw)
	zw.Reset(&buf)
	if _, err := zw.Write(data); err != nil {
		return nil, fmt.Errorf("gzip response: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip response: %w", err)
	}
	return buf.Bytes(), nil
}

// acceptsGzip reads Accept-Encoding: gzip is accepted unless absent or
// given q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.TrimSpace(name) != "*" {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

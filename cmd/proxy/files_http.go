package main

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"llmproxy/router"
	"llmproxy/vectorstore"
)

// The Files API (issue 11): OpenAI's shapes, logic in vectorstore; this
// file moves bytes between fiber and vectorstore.Service.

func (s *Server) fileRoutes() {
	a := s.app
	a.Post("/v1/files", s.auth, s.uploadFile)
	a.Get("/v1/files", s.auth, s.vsHandler(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, _ []byte) (any, error) {
		return v.ListFiles(ctx, k.team, c.Query("purpose"), vsListQuery(c))
	}))
	a.Get("/v1/files/:id", s.auth, s.vsHandler(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, _ []byte) (any, error) {
		return v.GetFile(ctx, k.team, c.Params("id"))
	}))
	a.Get("/v1/files/:id/content", s.auth, s.fileContent)
	a.Delete("/v1/files/:id", s.auth, s.vsHandler(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, _ []byte) (any, error) {
		return v.DeleteFile(ctx, k.team, c.Params("id"))
	}))
}

func vsListQuery(c *fiber.Ctx) vectorstore.ListQuery {
	return vectorstore.ListQuery{Limit: c.Query("limit"), After: c.Query("after"), Order: c.Query("order")}
}

type vsFunc func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, body []byte) (any, error)

// vsHandler reads the body (POST), runs f for the caller and answers its
// result as JSON; errors go to the ErrorHandler.
func (s *Server) vsHandler(f vsFunc) fiber.Handler {
	return func(c *fiber.Ctx) error {
		k := c.Locals(localsKey).(*teamKey)
		v, err := s.vectors.service()
		if err != nil {
			return err
		}
		var body []byte
		if c.Method() == fiber.MethodPost {
			if body, err = s.readBody(c); err != nil {
				return err
			}
		}
		ctx, cancel := s.requestContext(c, k)
		defer cancel()
		out, err := f(ctx, v, k, c, body)
		if err != nil {
			return err
		}
		return c.JSON(out)
	}
}

// multipartOverhead is what a multipart upload may carry beyond the
// file: boundaries, part headers and the purpose field.
const multipartOverhead = 64 << 10

// maxUploads is how many uploads may be read at once: an upload is held
// in memory until it is stored, up to max_file_bytes (50 MiB by default)
// where server.max_inflight budgets a request at 256 KiB. A quarter of the
// memory the process may use, in files of the largest size, within [2, 64].
func maxUploads(maxFileBytes int64) int {
	return int(min(max(memoryLimit()/4/max(maxFileBytes, 1), 2), 64))
}

func errUploadsBusy() *router.Error {
	return &router.Error{Kind: router.KindNoProvider, Status: fiber.StatusServiceUnavailable, Type: "server_error", Code: "overloaded",
		Message:    "Too many uploads are being received at once; retry after a short wait.",
		RetryAfter: time.Second}
}

// uploadFile is POST /v1/files: a multipart body with the parts "file"
// and "purpose", read as it arrives (never whole by fasthttp), the file
// capped at vector_stores.max_file_bytes (413 beyond).
func (s *Server) uploadFile(c *fiber.Ctx) error {
	k := c.Locals(localsKey).(*teamKey)
	v, err := s.vectors.service()
	if err != nil {
		return err
	}
	limit := v.MaxFileBytes()
	mt, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != fiber.MIMEMultipartForm || params["boundary"] == "" {
		return &router.Error{Kind: router.KindInvalidRequest, Status: fiber.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "Upload a file as multipart/form-data with the parts 'file' and 'purpose'."}
	}
	if enc := c.Get(fiber.HeaderContentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
		return errUnsupportedCoding([]byte(enc))
	}
	if declared := c.Request().Header.ContentLength(); declared > int(limit)+multipartOverhead {
		return vectorstore.ErrTooLarge(limit)
	}
	select {
	case s.uploads <- struct{}{}:
		defer func() { <-s.uploads }()
	default:
		return errUploadsBusy()
	}
	body := s.bodyStream(c)
	in := &capReader{r: body, n: int(limit) + multipartOverhead}
	var name, purpose string
	var data []byte
	mr := multipart.NewReader(in, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return uploadError(err, limit)
		}
		switch p.FormName() {
		case "file":
			name = p.FileName()
			data, err = readCapped(p, int(limit), -1)
		case "purpose":
			var b []byte
			b, err = readCapped(p, 64, -1)
			purpose = strings.TrimSpace(string(b))
		default:
			_, err = io.Copy(io.Discard, p)
		}
		if err != nil {
			return uploadError(err, limit)
		}
	}
	// Read the epilogue too, so the connection can carry the next request.
	if _, err := io.Copy(io.Discard, in); err != nil {
		return uploadError(err, limit)
	}
	if body.eof {
		c.Request().CloseBodyStream()
	}
	if data == nil {
		return &router.Error{Kind: router.KindInvalidRequest, Param: "file", Message: "Missing required parameter: 'file'."}
	}
	ctx, cancel := s.requestContext(c, k)
	defer cancel()
	out, err := v.UploadFile(ctx, k.team, name, purpose, data)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

// uploadError is the client's error for a failed upload read.
func uploadError(err error, limit int64) error {
	var re *router.Error
	switch {
	case errors.As(err, &re):
		return re
	case errors.Is(err, errCapped):
		return vectorstore.ErrTooLarge(limit)
	case isTimeout(err):
		return errBodyTimeout()
	}
	return &router.Error{Kind: router.KindInvalidRequest, Message: "The multipart body could not be read: " + router.Clip(err.Error()), Err: err}
}

// fileContent is GET /v1/files/{id}/content: the bytes as uploaded.
func (s *Server) fileContent(c *fiber.Ctx) error {
	k := c.Locals(localsKey).(*teamKey)
	v, err := s.vectors.service()
	if err != nil {
		return err
	}
	ctx, cancel := s.requestContext(c, k)
	defer cancel()
	name, data, err := v.FileContent(ctx, k.team, c.Params("id"))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEOctetStream)
	if cd := mime.FormatMediaType("attachment", map[string]string{"filename": name}); cd != "" {
		c.Set(fiber.HeaderContentDisposition, cd)
	}
	return c.Send(data)
}

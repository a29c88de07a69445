package parse

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The OpenAI last_error codes Text reports.
const (
	CodeUnsupported = "unsupported_file"
	CodeInvalid     = "invalid_file"
)

// MaxTextBytes bounds the text extracted from one document: 32 MiB is
// about 8M tokens, beyond OpenAI's 5M-token limit for a file in a vector
// store. A document with more is invalid_file rather than cut short in
// silence.
const MaxTextBytes = 32 << 20

// Error is a document ingestion cannot read; Code is the OpenAI
// vector-store-file last_error code: "unsupported_file" or "invalid_file".
// Message is written for the file's owner and names no internals.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func unsupported(format string, args ...any) *Error {
	return &Error{Code: CodeUnsupported, Message: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Message: fmt.Sprintf(format, args...)}
}

// limits are the bounds one document is read within: Text uses the
// package's constants; tests lower them.
type limits struct {
	text    int           // bytes of extracted text
	docXML  uint64        // bytes of a .docx body once inflated
	pdfTime time.Duration // time for one PDF, when ctx allows longer
}

// errTooLong is the text outgrowing limits.text; its message names the
// bound when the caller wraps it (see tooLong).
var errTooLong = errors.New("text too long")

func tooLong(limit int) *Error {
	return invalid("the document's text is larger than %s", size(uint64(limit)))
}

// size writes a bound for a message: "32 MiB", or "64 KiB" below 1 MiB.
func size(n uint64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

type format int

const (
	unknown format = iota
	plain
	htmlDoc
	pdf
	docx
	jsonDoc
)

// formats maps a lower-case extension to its format. Source code and
// other text that OpenAI's file search takes read as plain text.
var formats = map[string]format{
	".txt": plain, ".md": plain, ".markdown": plain, ".text": plain,
	".c": plain, ".cpp": plain, ".cs": plain, ".css": plain, ".go": plain, ".java": plain,
	".js": plain, ".php": plain, ".py": plain, ".rb": plain, ".sh": plain, ".tex": plain, ".ts": plain,
	".html": htmlDoc, ".htm": htmlDoc,
	".pdf":  pdf,
	".docx": docx,
	".json": jsonDoc,
}

// ext is name's extension, lower-cased; name may carry a path.
func ext(name string) string {
	name = name[strings.LastIndexAny(name, `/\`)+1:]
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return strings.ToLower(name[i:])
	}
	return ""
}

// Supported reports whether Text reads name's format: a known extension,
// or none at all, in which case Text tells the format from the content.
func Supported(name string) bool {
	e := ext(name)
	_, ok := formats[e]
	return ok || e == ""
}

// Text extracts the plain text of a document. name's extension picks the
// format; without a known one the content decides (%PDF, a zip holding
// word/document.xml, HTML, else text that must look like text). A file it
// cannot read is an *Error with Code "unsupported_file"; a damaged file of
// a format it reads is "invalid_file". Empty text files give "", nil.
// Other errors are ctx's or internal (retrying may help). ctx bounds the
// time; Text never panics.
func Text(ctx context.Context, name string, data []byte) (string, error) {
	return read(ctx, name, data, limits{text: MaxTextBytes, docXML: maxDocXML, pdfTime: maxPDFTime})
}

// read is Text within lim.
func read(ctx context.Context, name string, data []byte, lim limits) (s string, err error) {
	defer func() {
		if p := recover(); p != nil { // a parser bug must not take the worker down
			s, err = "", invalid("the file could not be read")
		}
	}()
	if err := ctx.Err(); err != nil {
		return "", err
	}
	f, ok := formats[ext(name)]
	if !ok {
		f = sniff(data)
	}
	switch f {
	case plain:
		s, err = plainText(data)
	case htmlDoc:
		s, err = htmlText(data, lim.text)
	case pdf:
		s, err = pdfText(ctx, data, lim)
	case docx:
		s, err = docxText(data, lim)
	case jsonDoc:
		s, err = jsonText(data, lim.text)
	default:
		return "", unsupported("the file is not a format ingestion reads (text, Markdown, HTML, PDF, DOCX or JSON)")
	}
	if errors.Is(err, errTooLong) || err == nil && len(s) > lim.text {
		return "", tooLong(lim.text)
	}
	return s, err
}

// sniff tells the format from the content when the name does not.
func sniff(data []byte) format {
	switch {
	case bytes.HasPrefix(data, []byte("%PDF-")):
		return pdf
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		if zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data))); err == nil && findFile(zr, docxBody) != nil {
			return docx
		}
		return unknown
	case binary(data):
		return unknown
	case strings.HasPrefix(http.DetectContentType(data), "text/html"):
		return htmlDoc
	}
	return plain
}

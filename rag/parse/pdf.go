package parse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/klippa-app/go-pdfium"
	pdferr "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/references"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// PDFs run in PDFium (Chrome's PDF engine) compiled to WebAssembly, in
// wazero: pure Go, no cgo. The pure-Go readers measured beside it
// (dslipak/pdf, ledongthuc/pdf) lose the spaces of TeX-made PDFs and,
// on damaged files, panic or loop forever on a goroutine nothing can
// stop; PDFium repairs what it can and its sandbox can be stopped.
const (
	// maxPDFTime bounds one document when ctx allows longer: past it the
	// file is invalid_file, its WebAssembly instance killed.
	maxPDFTime = 2 * time.Minute
	// pdfMemoryPages caps an instance's memory (64 KiB pages) at 512 MiB:
	// room for a 50 MB file, which PDFium holds whole, and its parsed
	// objects (text extraction decodes no images; a 68 MB PDF of images
	// reads in under a second).
	pdfMemoryPages = 512 << 20 >> 16
)

// pdfPool compiles PDFium once per process, on the first PDF: the
// compilation takes 5 to 15 seconds of CPU here, which a proxy that never
// ingests a PDF does not pay. The machine code is kept in the user's
// cache directory (a 0700 directory, as Go's build cache is) so the next
// process loads it in a fraction of a second; where that directory cannot
// be written, PDFium is compiled in memory every time. Instances are made
// per document and thrown away after, so no state survives from one file
// to the next. This is the package's one piece of process state, since
// Text is a plain function.
var pdfPool = sync.OnceValues(func() (pdfium.Pool, error) {
	if dir, err := os.UserCacheDir(); err == nil {
		if cache, err := wazero.NewCompilationCacheWithDir(filepath.Join(dir, "llmproxy", "wazero")); err == nil {
			if pool, err := newPDFPool(cache); err == nil {
				return pool, nil
			}
		}
	}
	return newPDFPool(nil)
})

func newPDFPool(cache wazero.CompilationCache) (pdfium.Pool, error) {
	rc := wazero.NewRuntimeConfig().
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling).
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(pdfMemoryPages)
	if cache != nil {
		rc = rc.WithCompilationCache(cache)
	}
	workers := min(runtime.GOMAXPROCS(0), 4)
	return webassembly.Init(webassembly.Config{
		MinIdle:       0,
		MaxIdle:       workers,
		MaxTotal:      workers,
		RuntimeConfig: rc,
		FSConfig:      wazero.NewFSConfig(), // no host files: documents arrive as bytes
		Stdout:        io.Discard,
		Stderr:        io.Discard,
	})
}

// pdfText extracts the text layer of every page. ctx (or lim.pdfTime,
// if sooner) bounds it: when it ends, the instance is killed mid-call.
func pdfText(ctx context.Context, data []byte, lim limits) (string, error) {
	pool, err := pdfPool()
	if err != nil {
		return "", fmt.Errorf("start PDFium: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, lim.pdfTime)
	defer cancel()
	inst, err := pool.GetInstanceWithContext(pctx)
	if err != nil {
		return "", pdfTimeout(ctx, fmt.Errorf("wait for a PDFium instance: %w", err))
	}
	stop := context.AfterFunc(pctx, func() { inst.Kill() }) // makes the running call return
	text, err := pdfPages(pctx, inst, data, lim.text)
	if !stop() {
		return "", pdfTimeout(ctx, invalid("the PDF took longer than %s to read", lim.pdfTime))
	}
	inst.Close()
	return text, err
}

// pdfTimeout is err unless the caller's ctx ended: then that is the
// reason (a shutdown is no fault of the file), and the job retries.
func pdfTimeout(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func pdfPages(ctx context.Context, inst pdfium.Pdfium, data []byte, limit int) (s string, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = "", invalid("the PDF could not be read")
		}
	}()
	doc, err := inst.OpenDocument(&requests.OpenDocument{File: &data})
	switch {
	case errors.Is(err, pdferr.ErrPassword), errors.Is(err, pdferr.ErrSecurity):
		return "", invalid("the PDF is encrypted")
	case err != nil:
		return "", invalid("the file is not a readable PDF")
	}
	defer inst.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: doc.Document})
	pages, err := inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: doc.Document})
	if err != nil {
		return "", invalid("the PDF's pages cannot be read")
	}
	var b strings.Builder
	for i := range pages.PageCount {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		page, err := pageText(inst, doc.Document, i)
		if err != nil {
			return "", invalid("page %d of the PDF cannot be read", i+1)
		}
		if t := pdfClean(page); t != "" {
			if b.Len() > 0 {
				b.WriteString("\n\n")
			}
			b.WriteString(t)
		}
		if b.Len() > limit {
			return "", errTooLong
		}
	}
	return b.String(), nil
}

// pageText is one page's text layer in one call: go-pdfium's GetPageText
// crosses into WebAssembly once per character, ten times slower.
func pageText(inst pdfium.Pdfium, doc references.FPDF_DOCUMENT, i int) (string, error) {
	tp, err := inst.FPDFText_LoadPage(&requests.FPDFText_LoadPage{Page: requests.Page{
		ByIndex: &requests.PageByIndex{Document: doc, Index: i},
	}})
	if err != nil {
		return "", err
	}
	defer inst.FPDFText_ClosePage(&requests.FPDFText_ClosePage{TextPage: tp.TextPage})
	n, err := inst.FPDFText_CountChars(&requests.FPDFText_CountChars{TextPage: tp.TextPage})
	if err != nil || n.Count == 0 {
		return "", err
	}
	// Count is in UTF-16 units, the buffer's size: twice the characters
	// leaves room for ones outside the BMP.
	t, err := inst.FPDFText_GetText(&requests.FPDFText_GetText{TextPage: tp.TextPage, Count: 2 * n.Count})
	if err != nil {
		return "", err
	}
	return t.Text, nil
}

// pdfClean turns PDFium's page text into plain lines: CRLF line ends
// become \n, a word hyphenated across a line end (PDFium marks the
// hyphen U+0002) is joined, and other controls go.
func pdfClean(s string) string {
	s = strings.NewReplacer("\x02\r\n", "", "\x02\n", "", "\x02", "-", "\r\n", "\n", "\r", "\n").Replace(s)
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if r == 0xfffe || r == 0xffff {
			return -1
		}
		return dropControls(r)
	}, s)
	return strings.TrimSpace(s)
}

package parse

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"unicode/utf8"
)

// FuzzText feeds every format broken bytes: Text must not panic or hang,
// must fail only with an *Error (or not at all), and must return valid
// UTF-8 within MaxTextBytes.
func FuzzText(f *testing.F) {
	f.Add("a.txt", []byte("hello\r\nworld"))
	f.Add("a.txt", utf16LE("héllo"))
	f.Add("a.md", []byte("# T\n\n*x*"))
	f.Add("a.html", []byte(htmlPage))
	f.Add("a.pdf", readFixture(f, "two-pages.pdf"))
	f.Add("a.pdf", readFixture(f, "unicode.pdf"))
	f.Add("a.docx", docxFile(f, docxBodyXML))
	f.Add("a.json", []byte(jsonDocument))
	f.Add("", binaryBlob)
	f.Add("noext", docxFile(f, "<w:p><w:r><w:t>x</w:t></w:r></w:p>"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		s, err := Text(context.Background(), name, data)
		var pe *Error
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("Text(%q) = %v; want nil or an *Error", name, err)
		}
		if err != nil && (s != "" || pe.Message == "" || (pe.Code != CodeInvalid && pe.Code != CodeUnsupported)) {
			t.Fatalf("Text(%q) = %q, %#v; want no text, a message and a known code", name, s, pe)
		}
		if !utf8.ValidString(s) || len(s) > MaxTextBytes {
			t.Fatalf("Text(%q) gave %d bytes, valid UTF-8 %v", name, len(s), utf8.ValidString(s))
		}
	})
}

// BenchmarkPDF reads a 2-page and a 20-page PDF: the difference is the
// cost of pages, the rest that of a fresh PDFium instance per document.
func BenchmarkPDF(b *testing.B) {
	for _, pages := range []int{2, 20} {
		data := manyPagesPDF(b, pages)
		if _, err := Text(context.Background(), "warm.pdf", data); err != nil {
			b.Fatal(err) // load or compile PDFium before timing
		}
		b.Run(fmt.Sprintf("pages=%d", pages), func(b *testing.B) {
			for b.Loop() {
				if _, err := Text(context.Background(), "b.pdf", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkHTML(b *testing.B) {
	data := []byte(htmlPage)
	for len(data) < 1<<20 {
		data = append(data, htmlPage...)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Text(context.Background(), "b.html", data); err != nil {
			b.Fatal(err)
		}
	}
}

package parse

import (
	"archive/zip"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"codeberg.org/go-pdf/fpdf"
)

var update = flag.Bool("update", false, "rewrite the PDF fixtures in testdata/")

// TestWritePDFFixtures rewrites testdata/*.pdf when run with -update. They
// are made with fpdf (a test-only dependency): two-pages.pdf in a
// standard font with WinAnsi text, unicode.pdf with an embedded TrueType
// subset and a ToUnicode map, as office suites write them.
func TestWritePDFFixtures(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/*.pdf")
	}
	for name, b := range map[string][]byte{"two-pages.pdf": twoPagesPDF(t), "unicode.pdf": unicodePDF(t)} {
		if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newPDF() *fpdf.Fpdf {
	p := fpdf.New("P", "mm", "A4", "")
	p.SetCreationDate(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	p.SetModificationDate(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	p.SetCatalogSort(true)
	return p
}

func output(tb testing.TB, p *fpdf.Fpdf) []byte {
	tb.Helper()
	var b bytes.Buffer
	if err := p.Output(&b); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func twoPagesPDF(tb testing.TB) []byte {
	p := newPDF()
	tr := p.UnicodeTranslatorFromDescriptor("") // UTF-8 → cp1252
	p.SetFont("Helvetica", "", 12)
	p.AddPage()
	p.MultiCell(0, 6, tr("Vector stores hold chunks of documents. The café serves crème brûlée."), "", "", false)
	p.AddPage()
	p.MultiCell(0, 6, "The second page talks about embeddings and hybrid search.", "", "", false)
	return output(tb, p)
}

func unicodePDF(tb testing.TB) []byte {
	p := newPDF()
	font, err := os.ReadFile(filepath.Join(fpdfDir(tb), "font", "DejaVuSansCondensed.ttf"))
	if err != nil {
		tb.Fatal(err)
	}
	p.AddUTF8FontFromBytes("dejavu", "", font)
	p.SetFont("dejavu", "", 12)
	p.AddPage()
	p.MultiCell(0, 6, "Naïve façade: Ωmega ≈ 3.14, Привет мир, Ελληνικά.", "", "", false)
	return output(tb, p)
}

// fpdfDir is fpdf's module directory, which ships the DejaVu font.
func fpdfDir(tb testing.TB) string {
	tb.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "codeberg.org/go-pdf/fpdf").Output()
	if err != nil {
		tb.Fatalf("go list fpdf: %v", err)
	}
	return string(bytes.TrimSpace(out))
}

// manyPagesPDF is n pages of text in a standard font, for the benchmark
// and the deadline tests.
func manyPagesPDF(tb testing.TB, n int) []byte {
	p := newPDF()
	p.SetFont("Helvetica", "", 10)
	for i := range n {
		p.AddPage()
		for j := range 50 {
			p.CellFormat(0, 5, fmt.Sprintf("Page %d line %d: ingestion parses, chunks and embeds every document it is given.", i+1, j+1), "", 1, "", false, 0, "")
		}
	}
	return output(tb, p)
}

// densePagePDF is one page of n tiny text objects: PDFium reads it in one
// call that takes a second or more, which only killing the instance can
// cut short.
func densePagePDF(tb testing.TB, n int) []byte {
	p := newPDF()
	p.SetFont("Helvetica", "", 2)
	p.AddPage()
	for i := range n {
		p.Text(float64(5+i%4*50), float64(5+i/4%280), fmt.Sprintf("word%d alpha beta gamma", i))
	}
	return output(tb, p)
}

func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// zipFile builds a zip archive holding files (name → content), deflated.
func zipFile(tb testing.TB, files ...[2]string) []byte {
	tb.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range files {
		w, err := zw.Create(f[0])
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := w.Write([]byte(f[1])); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

const wordNS = `xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"`

// docxFile is a minimal Word document whose body holds paragraphs (raw
// WordprocessingML inside w:body).
func docxFile(tb testing.TB, body string) []byte {
	return zipFile(tb,
		[2]string{"[Content_Types].xml", `<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`},
		[2]string{"word/document.xml", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document ` + wordNS + `><w:body>` + body + `</w:body></w:document>`},
	)
}

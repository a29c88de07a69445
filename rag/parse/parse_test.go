package parse

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// code is err's last_error code, "" for nil and "other" for an error that
// is not an *Error.
func code(err error) string {
	var pe *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pe):
		return pe.Code
	}
	return "other"
}

const htmlPage = `<!DOCTYPE html><html><head><title>Doc &amp; Title</title>
<style>body { color: red }</style><script>var x = "<p>not text</p>";</script></head>
<body><noscript>enable scripts</noscript><template><p>hidden</p></template>
<h1>Hello&nbsp;world</h1><p>First   para
graph with <b>bold</b> and <a href="#">a link</a>.</p><!-- a comment --><ul><li>one</li><li>two</li></ul>
<p>caf&eacute; &lt;tag&gt; &#x263A;<br>next &#1; line</p><table><tr><td>a</td><td>b</td></tr></table></body></html>`

const docxBodyXML = `<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Quarterly report</w:t></w:r></w:p>
<w:p><w:r><w:t xml:space="preserve">Revenue grew </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>12%</w:t></w:r><w:r><w:tab/><w:t>in Q3</w:t></w:r><w:del><w:r><w:delText>old text</w:delText></w:r></w:del></w:p>
<w:p><w:r><w:t>line one</w:t><w:br/><w:t>line two &amp; more</w:t></w:r></w:p>
<w:tbl><w:tr><w:tc><w:p><w:r><w:t>cell a</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>cell b</w:t></w:r></w:p></w:tc></w:tr></w:tbl>`

const jsonDocument = `{"title": "Q3 report", "tags": ["finance", "q3"], "owner": {"name": "Ada", "id": 7},
 "draft": false, "note": null, "multi": "line1\nline2", "empty": {}, "list": [{"k": "v"}, [1, 2.5e3]]}`

const jsonRendered = `title: Q3 report
tags:
  - finance
  - q3
owner:
  name: Ada
  id: 7
draft: false
note: null
multi: line1 line2
empty:
list:
  -
    k: v
  -
    - 1
    - 2.5e3`

func utf16LE(s string) []byte {
	b := []byte{0xff, 0xfe}
	for _, r := range s { // BMP only, enough for the test
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

// binaryBlob is bytes no text format reads: a PNG header and noise.
var binaryBlob = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{0, 1, 2, 3, 0xff, 0xfe, 0x80, 7}, 64)...)

func TestText(t *testing.T) {
	twoPages := readFixture(t, "two-pages.pdf")
	for _, tc := range []struct {
		name     string
		file     string
		data     []byte
		want     string   // exact text, when contains is empty
		contains []string // else: fragments the text must hold, in order
		code     string   // the *Error's code, "" for success
	}{
		{name: "txt", file: "a.txt", data: []byte("hello\r\nworld\n"), want: "hello\nworld\n"},
		{name: "txt bom", file: "a.TXT", data: []byte("\xef\xbb\xbfhello"), want: "hello"},
		{name: "txt utf16", file: "a.txt", data: utf16LE("héllo wörld"), want: "héllo wörld"},
		{name: "txt invalid utf8 replaced", file: "a.txt", data: []byte("caf\xe9 au lait, a fine drink"), want: "caf\uFFFD au lait, a fine drink"},
		{name: "txt binary", file: "a.txt", data: binaryBlob, code: CodeUnsupported},
		{name: "txt empty", file: "empty.txt", data: nil, want: ""},
		{name: "md kept as written", file: "README.md", data: []byte("# Title\n\n- item *one*\n"), want: "# Title\n\n- item *one*\n"},
		{name: "source code", file: "dir/main.go", data: []byte("package main\n"), want: "package main\n"},
		{name: "html", file: "page.html", data: []byte(htmlPage),
			want: "Doc & Title\n\nHello world\n\nFirst para graph with bold and a link.\n\none\ntwo\n\ncafé <tag> ☺\nnext line\n\na b"},
		{name: "htm empty", file: "x.htm", data: nil, want: ""},
		{name: "pdf two pages", file: "doc.pdf", data: twoPages, contains: []string{
			"Vector stores hold chunks of documents. The café serves crème brûlée.",
			"\n\n",
			"The second page talks about embeddings and hybrid search."}},
		{name: "pdf unicode font", file: "u.pdf", data: readFixture(t, "unicode.pdf"),
			contains: []string{"Naïve façade: Ωmega ≈ 3.14, Привет мир, Ελληνικά."}},
		{name: "pdf truncated", file: "doc.pdf", data: twoPages[:len(twoPages)/3], code: CodeInvalid},
		{name: "pdf garbled", file: "doc.pdf", data: append([]byte("%PDF-1.7\n"), binaryBlob...), code: CodeInvalid},
		{name: "pdf empty", file: "doc.pdf", data: nil, code: CodeInvalid},
		{name: "docx", file: "r.docx", data: docxFile(t, docxBodyXML),
			want: "Quarterly report\nRevenue grew 12% in Q3\nline one\nline two & more\ncell a\ncell b"},
		{name: "docx empty body", file: "r.docx", data: docxFile(t, ""), want: ""},
		{name: "docx not a zip", file: "r.docx", data: []byte("PK\x03\x04 but no zip"), code: CodeInvalid},
		{name: "docx truncated", file: "r.docx", data: docxFile(t, docxBodyXML)[:200], code: CodeInvalid},
		{name: "docx bad xml", file: "r.docx", data: docxFile(t, "<w:p><w:t>unclosed</w:p>"), code: CodeInvalid},
		{name: "docx without body", file: "r.docx", data: zipFile(t, [2]string{"word/other.xml", "<x/>"}), code: CodeInvalid},
		{name: "docx empty", file: "r.docx", data: nil, code: CodeInvalid},
		{name: "json", file: "d.json", data: []byte(jsonDocument), want: jsonRendered},
		{name: "json scalar", file: "d.json", data: []byte(` "just \"text\"" `), want: `just "text"`},
		{name: "json invalid", file: "d.json", data: []byte(`{"a": 1,}`), code: CodeInvalid},
		{name: "json trailing data", file: "d.json", data: []byte(`{"a": 1} {"b": 2}`), code: CodeInvalid},
		{name: "json unclosed", file: "d.json", data: []byte(`{"a": [1, 2`), code: CodeInvalid},
		{name: "json empty", file: "d.json", data: nil, code: CodeInvalid},
		{name: "sniff pdf", file: "upload", data: twoPages, contains: []string{"crème brûlée", "hybrid search"}},
		{name: "sniff docx", file: "blob.bin", data: docxFile(t, docxBodyXML), contains: []string{"Quarterly report"}},
		{name: "sniff html", file: "noext", data: []byte(htmlPage), contains: []string{"Hello world"}},
		{name: "sniff text", file: "LICENSE", data: []byte("Permission is granted"), want: "Permission is granted"},
		{name: "sniff empty", file: "noext", data: nil, want: ""},
		{name: "sniff other zip", file: "a.zip", data: zipFile(t, [2]string{"a.txt", "hi"}), code: CodeUnsupported},
		{name: "binary blob", file: "image.png", data: binaryBlob, code: CodeUnsupported},
		{name: "binary no name", file: "", data: binaryBlob, code: CodeUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Text(context.Background(), tc.file, tc.data)
			if c := code(err); c != tc.code {
				t.Fatalf("Text(%q) error = %v (code %q); want code %q", tc.file, err, c, tc.code)
			}
			if tc.code != "" {
				if got != "" || err.(*Error).Message == "" {
					t.Errorf("Text(%q) = %q with message %q; want no text and a message", tc.file, got, err.(*Error).Message)
				}
				return
			}
			if tc.contains == nil && got != tc.want {
				t.Errorf("Text(%q) =\n%q\nwant\n%q", tc.file, got, tc.want)
			}
			rest := got
			for _, frag := range tc.contains {
				i := strings.Index(rest, frag)
				if i < 0 {
					t.Fatalf("Text(%q) =\n%q\nwant it to hold %q (in order)", tc.file, got, frag)
				}
				rest = rest[i+len(frag):]
			}
			if !utf8.ValidString(got) {
				t.Errorf("Text(%q) is not valid UTF-8", tc.file)
			}
		})
	}
}

func TestSupported(t *testing.T) {
	for name, want := range map[string]bool{
		"a.txt": true, "b.MD": true, "c.markdown": true, "d.html": true, "e.htm": true, "f.pdf": true,
		"g.docx": true, "h.json": true, "dir.d/README": true, `C:\docs\notes.Txt`: true, "main.py": true,
		"image.png": false, "archive.zip": false, "old.doc": false, "slides.pptx": false, "x.pdf.exe": false,
		".bashrc": true, // a dotfile has no extension: its content decides
	} {
		if got := Supported(name); got != want {
			t.Errorf("Supported(%q) = %v; want %v", name, got, want)
		}
	}
}

func TestZipBounds(t *testing.T) {
	// A header that declares a body past the bound is refused unread.
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: docxBody, Method: zip.Deflate, UncompressedSize64: maxDocXML + 1, CompressedSize64: 2})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte{3, 0})
	zw.Close()
	if _, err := Text(context.Background(), "bomb.docx", b.Bytes()); code(err) != CodeInvalid || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("declared bomb: Text error = %v; want invalid_file, larger than", err)
	}

	// A header that lies (1 KiB) about a body that inflates to 300 KiB:
	// archive/zip stops at the declared size, so the declared size is the
	// bound. And the honest body under a 256 KiB bound (lowered so the
	// test does not inflate 128 MiB) is refused, under 512 KiB read.
	body := `<w:document ` + wordNS + `><w:body><w:p><w:r><w:t>` + strings.Repeat("a", 300<<10) + `</w:t></w:r></w:p></w:body></w:document>`
	honest := zipFile(t, [2]string{docxBody, body})
	if len(honest) > 4<<10 {
		t.Fatalf("the bomb is %d bytes compressed; want a high ratio", len(honest))
	}
	if _, err := Text(context.Background(), "liar.docx", lieAboutSize(t, honest, 1024)); code(err) != CodeInvalid {
		t.Errorf("lying bomb: Text error = %v; want invalid_file", err)
	}
	lim := testLimits()
	lim.docXML = 256 << 10
	if _, err := read(context.Background(), "a.docx", honest, lim); code(err) != CodeInvalid || !strings.Contains(err.Error(), "larger than 256 KiB") {
		t.Errorf("300 KiB body, 256 KiB bound: error = %v; want invalid_file, larger than 256 KiB", err)
	}
	lim.docXML = 512 << 10
	if s, err := read(context.Background(), "a.docx", honest, lim); err != nil || len(s) != 300<<10 {
		t.Errorf("300 KiB body, 512 KiB bound: %d bytes, %v; want all of it", len(s), err)
	}

	// Too many entries (stored, not deflated: a deflate writer per entry
	// is slow to make).
	var many bytes.Buffer
	zw = zip.NewWriter(&many)
	for i := range maxZipEntries + 1 {
		name := fmt.Sprintf("f%d", i)
		if i == 0 {
			name = docxBody
		}
		if _, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store}); err != nil {
			t.Fatal(err)
		}
	}
	zw.Close()
	if _, err := Text(context.Background(), "many.docx", many.Bytes()); code(err) != CodeInvalid || !strings.Contains(err.Error(), "entries") {
		t.Errorf("%d entries: Text error = %v; want invalid_file about entries", maxZipEntries+1, err)
	}
}

// lieAboutSize rewrites the uncompressed size of the zip's only entry, in
// its local header and its central directory record, to n.
func lieAboutSize(t *testing.T, z []byte, n uint32) []byte {
	t.Helper()
	out := bytes.Clone(z)
	put := func(at int) {
		out[at], out[at+1], out[at+2], out[at+3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	}
	local := bytes.Index(out, []byte("PK\x03\x04"))
	central := bytes.Index(out, []byte("PK\x01\x02"))
	if local < 0 || central < 0 {
		t.Fatal("not a zip")
	}
	put(local + 22)
	put(central + 24)
	return out
}

// testLimits are Text's limits.
func testLimits() limits {
	return limits{text: MaxTextBytes, docXML: maxDocXML, pdfTime: maxPDFTime}
}

// TestTextTooLong: every format stops at the text bound (lowered to 64
// KiB here) with invalid_file, and reads the same document under a higher
// one.
func TestTextTooLong(t *testing.T) {
	words := strings.Repeat("word ", 64<<10/5+1)
	for _, tc := range []struct {
		file string
		data []byte
	}{
		{"big.txt", []byte(words)},
		{"big.html", []byte("<p>" + words + "</p>")},
		{"big.json", []byte(`{"k": "` + words + `"}`)},
		{"big.docx", docxFile(t, "<w:p><w:r><w:t>"+words+"</w:t></w:r></w:p>")},
		{"big.pdf", manyPagesPDF(t, 18)}, // about 72 KiB of text
	} {
		lim := testLimits()
		lim.text = 64 << 10
		if _, err := read(context.Background(), tc.file, tc.data, lim); code(err) != CodeInvalid || !strings.Contains(err.Error(), "larger than 64 KiB") {
			t.Errorf("read(%s) under 64 KiB = %v; want invalid_file, larger than 64 KiB", tc.file, err)
		}
		lim.text = 1 << 20
		if s, err := read(context.Background(), tc.file, tc.data, lim); err != nil || len(s) < 64<<10 {
			t.Errorf("read(%s) under 1 MiB = %d bytes, %v; want all of it", tc.file, len(s), err)
		}
	}
}

func TestTextCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, file := range []string{"a.txt", "a.pdf"} {
		if _, err := Text(ctx, file, []byte("%PDF-1.4 hello")); !errors.Is(err, context.Canceled) {
			t.Errorf("Text(%s) with a canceled ctx = %v; want context.Canceled", file, err)
		}
	}
}

// TestPDFDeadline: a PDF that outlasts its time is stopped in the middle
// of PDFium's work — the caller's deadline is the caller's error (a retry
// may succeed), the package's own bound makes the file invalid_file — and
// the next PDF reads fine.
func TestPDFDeadline(t *testing.T) {
	big := densePagePDF(t, 8000)
	if _, err := Text(context.Background(), "warm.pdf", readFixture(t, "two-pages.pdf")); err != nil {
		t.Fatal(err) // compiles PDFium outside the timed part
	}
	start := time.Now()
	full, err := Text(context.Background(), "big.pdf", big)
	whole := time.Since(start)
	if err != nil || !strings.Contains(full, "word7999 alpha") {
		t.Fatalf("big PDF: %v, %d bytes of text", err, len(full))
	}
	t.Logf("the dense page takes %v", whole)

	cut := whole / 10
	ctx, cancel := context.WithTimeout(context.Background(), cut)
	defer cancel()
	start = time.Now()
	if _, err := Text(ctx, "big.pdf", big); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Text under a %v deadline = %v; want context.DeadlineExceeded", cut, err)
	}
	if took := time.Since(start); took > whole/2 {
		t.Errorf("Text under a %v deadline took %v (the whole document takes %v); want it stopped", cut, took, whole)
	}

	lim := testLimits()
	lim.pdfTime = cut
	start = time.Now()
	if _, err := read(context.Background(), "big.pdf", big, lim); code(err) != CodeInvalid || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("read with pdfTime %v = %v; want invalid_file, longer than", cut, err)
	}
	if took := time.Since(start); took > whole/2 {
		t.Errorf("read with pdfTime %v took %v (the whole document takes %v); want it stopped", cut, took, whole)
	}

	if got, err := Text(context.Background(), "after.pdf", readFixture(t, "two-pages.pdf")); err != nil || !strings.Contains(got, "hybrid search") {
		t.Errorf("a PDF after the killed ones = %q, %v; want its text", got, err)
	}
}

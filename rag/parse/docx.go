package parse

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"io"
)

// A .docx is a zip: a zip bomb inflates one small entry to gigabytes, and
// a crafted central directory can list millions of entries. Real
// documents have tens of entries and a body of a few MiB.
const (
	maxZipEntries = 10000
	maxDocXML     = 128 << 20 // bytes of word/document.xml once inflated
)

const docxBody = "word/document.xml"

func findFile(zr *zip.Reader, name string) *zip.File {
	for _, f := range zr.File {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// docxText reads the body of a Word document: paragraphs (w:p) of runs
// (w:t), with w:tab and w:br. Headers, footers, comments and deleted
// revisions (w:delText) are left out.
func docxText(data []byte, lim limits) (string, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", invalid("the DOCX is not a valid zip archive")
	}
	if len(zr.File) > maxZipEntries {
		return "", invalid("the DOCX has %d entries; at most %d are read", len(zr.File), maxZipEntries)
	}
	f := findFile(zr, docxBody)
	if f == nil {
		return "", invalid("the DOCX has no %s", docxBody)
	}
	// archive/zip stops with ErrFormat at the size the central directory
	// declares, so checking that size bounds what is inflated; a header
	// that lies is a broken file (TestZipBounds holds it to this).
	if f.UncompressedSize64 > lim.docXML {
		return "", invalid("the DOCX body is larger than %s uncompressed", size(lim.docXML))
	}
	rc, err := f.Open()
	if err != nil {
		return "", invalid("the DOCX body cannot be opened")
	}
	defer rc.Close()
	s, err := wordText(rc, lim.text)
	if errors.Is(err, errTooLong) {
		return "", err
	}
	if err != nil {
		return "", invalid("the DOCX body is not valid XML")
	}
	return s, nil
}

// wordText walks WordprocessingML. Only elements' local names are looked
// at: Word writes them in the w: namespace, and nothing else in the body
// uses these names for text.
func wordText(r io.Reader, limit int) (string, error) {
	d := xml.NewDecoder(r)
	w := textWriter{limit: limit}
	inText := 0 // depth inside w:t
	for !w.full {
		tok, err := d.Token()
		if err == io.EOF {
			return w.result()
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "t":
				inText++
			case "tab":
				w.space = true
			case "br", "cr":
				w.brk(1)
			case "tc":
				w.space = true
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "t":
				inText = max(inText-1, 0)
			case "p", "tr":
				w.brk(1)
			}
		case xml.CharData:
			if inText > 0 {
				w.text(string(t))
			}
		}
	}
	return w.result()
}

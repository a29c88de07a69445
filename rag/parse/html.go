package parse

import (
	"bytes"
	"io"

	"golang.org/x/net/html"
)

// skipped elements hold no text a reader sees.
var skipped = map[string]bool{"script": true, "style": true, "noscript": true, "template": true}

// blocks end a paragraph; lines end a line.
var (
	blocks = map[string]bool{
		"address": true, "article": true, "aside": true, "blockquote": true, "body": true, "caption": true,
		"dd": true, "details": true, "dialog": true, "div": true, "dl": true, "dt": true, "fieldset": true,
		"figcaption": true, "figure": true, "footer": true, "form": true, "h1": true, "h2": true, "h3": true,
		"h4": true, "h5": true, "h6": true, "header": true, "hr": true, "html": true, "main": true, "nav": true,
		"ol": true, "p": true, "pre": true, "section": true, "summary": true, "table": true, "title": true, "ul": true,
	}
	lines = map[string]bool{"br": true, "li": true, "tr": true, "option": true}
	cells = map[string]bool{"td": true, "th": true}
)

// htmlText is the text a reader of the page sees: no tags, scripts,
// styles or comments; entities decoded; block elements as paragraphs.
// The bytes are taken as UTF-8 (a <meta charset> is not honoured).
func htmlText(data []byte, limit int) (string, error) {
	z := html.NewTokenizer(bytes.NewReader(data))
	w := textWriter{limit: limit}
	skip := 0 // depth inside skipped elements
	for !w.full {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if z.Err() == io.EOF {
				return w.result()
			}
			return "", invalid("the HTML could not be read")
		case html.TextToken:
			if skip == 0 {
				w.text(string(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, _ := z.TagName()
			tag := string(name)
			switch {
			case skipped[tag] && tt == html.StartTagToken:
				skip++
			case skipped[tag] && tt == html.EndTagToken:
				skip = max(skip-1, 0)
			case blocks[tag]:
				w.brk(2)
			case lines[tag]:
				w.brk(1)
			case cells[tag]:
				w.space = true
			}
		}
	}
	return w.result()
}

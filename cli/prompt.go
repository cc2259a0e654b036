package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// prompter asks questions on a terminal: the question on stderr, the answer from stdin.
type prompter struct {
	in  *bufio.Reader
	out io.Writer
}

func newPrompter(in io.Reader, out io.Writer) *prompter {
	return &prompter{in: bufio.NewReader(in), out: out}
}

// line reads one answer; end of input with nothing typed is an error, so a closed stdin
// never loops.
func (p *prompter) line() (string, error) {
	s, err := p.in.ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || s == "") {
		return "", fmt.Errorf("prompt failed: %w", err)
	}
	return strings.TrimSpace(s), nil
}

// Input asks for a string; an empty answer gives def.
func (p *prompter) Input(question, def string) (string, error) {
	if def != "" {
		fmt.Fprintf(p.out, "%s [%s]: ", question, def)
	} else {
		fmt.Fprintf(p.out, "%s: ", question)
	}
	s, err := p.line()
	if err != nil {
		return "", err
	}
	if s == "" {
		return def, nil
	}
	return s, nil
}

// Confirm asks a yes/no question; an empty answer gives def.
func (p *prompter) Confirm(question string, def bool) (bool, error) {
	hint := "y/N"
	if def {
		hint = "Y/n"
	}
	for {
		fmt.Fprintf(p.out, "%s [%s]: ", question, hint)
		s, err := p.line()
		if err != nil {
			return false, err
		}
		switch strings.ToLower(s) {
		case "":
			return def, nil
		case "y", "yes":
			return true, nil
		case "n", "no":
			return false, nil
		}
		fmt.Fprintln(p.out, "please answer y or n")
	}
}

// Select asks for one of options, by number or by name; an empty answer gives def.
func (p *prompter) Select(question string, options []string, def string) (string, error) {
	fmt.Fprintf(p.out, "%s:\n", question)
	for i, o := range options {
		fmt.Fprintf(p.out, "  %d) %s\n", i+1, o)
	}
	for {
		fmt.Fprintf(p.out, "choice [%s]: ", def)
		s, err := p.line()
		if err != nil {
			return "", err
		}
		if s == "" {
			return def, nil
		}
		if n, err := strconv.Atoi(s); err == nil && n >= 1 && n <= len(options) {
			return options[n-1], nil
		}
		for _, o := range options {
			if s == o {
				return o, nil
			}
		}
		fmt.Fprintf(p.out, "please answer 1-%d or a name\n", len(options))
	}
}

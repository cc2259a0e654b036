package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// writeReference renders the command part of docs/cli-reference.md from the command
// tree itself, so the document cannot drift from the binary (TestCLIReference checks).
func writeReference(w io.Writer, root *cobra.Command) error {
	var b strings.Builder
	for _, group := range root.Groups() {
		fmt.Fprintf(&b, "### %s\n\n", strings.TrimSuffix(group.Title, ":"))
		for _, c := range root.Commands() {
			if c.GroupID != group.ID || !c.IsAvailableCommand() || c.Name() == "help" {
				continue
			}
			fmt.Fprintf(&b, "#### `karapace %s`\n\n", c.Use)
			desc := c.Long
			if desc == "" {
				desc = c.Short
			}
			// Long texts are wrapped for the terminal; join them back into paragraphs.
			for i, para := range strings.Split(desc, "\n\n") {
				if i > 0 {
					b.WriteString("\n")
				}
				if strings.HasPrefix(para, "  ") {
					fmt.Fprintf(&b, "```\n%s\n```\n", para)
					continue
				}
				fmt.Fprintf(&b, "%s\n", strings.ReplaceAll(para, "\n", " "))
			}
			if len(c.Aliases) > 0 {
				fmt.Fprintf(&b, "\nAliases: %s.\n", strings.Join(c.Aliases, ", "))
			}
			if flags := c.LocalNonPersistentFlags().FlagUsages(); flags != "" {
				fmt.Fprintf(&b, "\n```\n%s```\n", flags)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("### Global flags\n\n```\n")
	b.WriteString(root.PersistentFlags().FlagUsages())
	b.WriteString("```\n")
	_, err := io.WriteString(w, b.String())
	return err
}

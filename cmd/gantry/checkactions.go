package main

import (
	"fmt"
	"io"

	"github.com/gantry-ci/gantry/internal/actioncheck"
	"github.com/gantry-ci/gantry/internal/stages"
)

func checkActions(w io.Writer, root string) error {
	problems, err := actioncheck.CheckTree(root, stages.All())
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintln(w, p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d problem(s) in action.yml files", len(problems))
	}
	fmt.Fprintln(w, "every action.yml checks out")
	return nil
}

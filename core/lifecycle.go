package core

// validTransitions is the original's lifecycle table (spec 3.2) plus one change: an
// environment with a live session may gain more sessions (Running -> Running), so that
// several sessions can share one environment.
var validTransitions = map[State][]State{
	Defined:  {Built},
	Built:    {Built, Running, Frozen, Archived},
	Running:  {Built, Running, Frozen},
	Frozen:   {Built, Archived},
	Archived: {Built},
}

// checkTransition returns a *TransitionError unless from -> to is allowed.
func checkTransition(from, to State) error {
	for _, s := range validTransitions[from] {
		if s == to {
			return nil
		}
	}
	return &TransitionError{From: from.String(), To: to.String(), Hint: transitionHints[[2]State{from, to}]}
}

// transitionHints say how to get out of a refused transition a user runs into.
var transitionHints = map[[2]State]string{
	{Frozen, Running}:   "a frozen environment cannot be entered; 'karapace unfreeze <env>' makes it built again",
	{Archived, Running}: "an archived environment cannot be entered; 'karapace build' its manifest to bring it back",
	{Archived, Frozen}:  "an archived environment cannot be frozen; 'karapace build' its manifest to bring it back",
}

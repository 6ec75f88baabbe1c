"""What a person looks at: sequence diagrams and timelines drawn from a trace, tables, plots,
the notebook dashboard and widgets, the terminal dashboard. Views import no pattern's sockets."""

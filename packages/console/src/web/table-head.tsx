/** A table's header row: column names, with an explanation on hover where one is given as [name, title]. */
export function TableHead({ columns }: { columns: ReadonlyArray<string | readonly [string, string]> }) {
  return (
    <thead>
      <tr>
        {columns.map((column) =>
          typeof column === "string" ? (
            <th key={column}>{column}</th>
          ) : (
            <th key={column[0]} title={column[1]}>
              {column[0]}
            </th>
          ),
        )}
      </tr>
    </thead>
  );
}

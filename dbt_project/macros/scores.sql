{# RFM scores (docs/scores.md): a buyer's score is the quintile where the first buyer with the same
   value falls when all buyers are ranked, worst first. `rank()` gives tied buyers the same
   position, so equal behaviour always gets an equal score (ntile would split a tie by an
   arbitrary order), and the lowest value (one order, for frequency) always scores 1.
   Integer arithmetic only: 5 x (rank - 1) >= k x buyers <=> the first tied buyer sits past the
   k-th fifth; exact on every engine. #}
{% macro tied_quintile(rank, buyers) -%}
    case
        when 5 * ({{ rank }} - 1) >= 4 * {{ buyers }} then 5
        when 5 * ({{ rank }} - 1) >= 3 * {{ buyers }} then 4
        when 5 * ({{ rank }} - 1) >= 2 * {{ buyers }} then 3
        when 5 * ({{ rank }} - 1) >= 1 * {{ buyers }} then 2
        else 1
    end
{%- endmacro %}
